"""Kit as a destination: subscribe, tag, unsubscribe (API v4).

Facts (api.kit.com OpenAPI as mirrored in api-evangelist/convertkit `openapi/convertkit-*-api-
openapi.yml`; Kit/ConvertKitSDK-PHP; developers.kit.com/api-reference/rate-limits):
- base `https://api.kit.com/v4`, header `X-Kit-Api-Key`; errors are `{"errors": ["…"]}`; a 429's
  body is the plain text "Retry later" with no Retry-After; an API key may send 120 requests per
  rolling 60 s (the test fragment sets `rate_limit = "108/m"`, `burst = 10`: never more than 118);
- `POST /v4/subscribers` is an upsert by address (201 created, 200 updated), but it never changes
  the state: a subscriber who unsubscribed stays unsubscribed (the result says so);
- tags are addressed by id: `GET /v4/tags` (cursor pages, `per_page` ≤ 1000) finds one by name,
  `POST /v4/tags` creates one (200 with the existing tag when the name exists); the ids are cached
  in Redis for every worker; `POST /v4/tags/{id}/subscribers {"email_address"}` tags an existing
  subscriber (201, or 200 when already tagged: a retry is harmless). A 404 there means the tag
  was deleted in Kit (looked up again once) or the subscriber does not exist;
- unsubscribe: `GET /v4/subscribers?email_address=…&status=all` for the id (the default status
  filter is `active`), then `POST /v4/subscribers/{id}/unsubscribe` (204) unless already cancelled.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from pipeline.errors import PermanentError
from pipeline.providers.base import DeliveryRef, DestinationContext, DestinationProvider
from pipeline.providers.shared.clients import destination_client
from pipeline.providers.shared.contacts import names, require_email
from pipeline.providers.shared.id_cache import IdCache
from pipeline.providers.shared.options import StrictOptions
from pipeline.providers.shared.products import tags_for

API_PATH = "/v4"
MAX_TAG_PAGES = 50  # 50,000 tags: far beyond any account; stops a cursor that never ends


class KitOptions(StrictOptions):
    api_key = fields.Str(required=True)
    tags = fields.List(fields.Str(), load_default=list)


class KitApi:
    def __init__(self, ctx: DestinationContext) -> None:
        self.client = destination_client(
            ctx, "kit", path=API_PATH, headers={"X-Kit-Api-Key": ctx.destination.options["api_key"]}
        )
        self.tag_ids = IdCache.of(ctx.redis, ctx.destination, "tags")

    def upsert(self, email: str, first_name: str | None) -> dict[str, Any]:
        body = {"email_address": email, **({"first_name": first_name} if first_name else {})}
        found: dict[str, Any] = self.client.request("POST", "/subscribers", json=body).json()
        return dict(found["subscriber"])

    def find(self, email: str) -> dict[str, Any] | None:
        params = {"email_address": email, "status": "all"}
        found = self.client.request("GET", "/subscribers", params=params).json()
        wanted = email.strip().lower()
        for subscriber in found.get("subscribers") or []:
            if str(subscriber.get("email_address", "")).lower() == wanted:
                return dict(subscriber)
        return None

    def tag_id(self, name: str) -> str:
        cached = self.tag_ids.get(name)
        if cached is not None:
            return cached
        found = self._listed(name)
        if found is not None:
            return found
        tag = self.client.request("POST", "/tags", json={"name": name}).json()["tag"]
        self.tag_ids.put({name: str(tag["id"])})
        return str(tag["id"])

    def _listed(self, name: str) -> str | None:
        """Reads the account's tags page by page, caching every one; the id of `name` if there."""
        params: dict[str, Any] = {"per_page": 1000}
        for _ in range(MAX_TAG_PAGES):
            page = self.client.request("GET", "/tags", params=params).json()
            seen = {str(t["name"]): str(t["id"]) for t in page.get("tags") or []}
            self.tag_ids.put(seen)
            if name in seen:
                return seen[name]
            pagination = page.get("pagination") or {}
            if not pagination.get("has_next_page") or not pagination.get("end_cursor"):
                return None
            params["after"] = pagination["end_cursor"]
        return None

    def tag(self, email: str, name: str) -> str:
        tag_id = self.tag_id(name)
        path = f"/tags/{tag_id}/subscribers"
        response = self.client.request("POST", path, json={"email_address": email}, accept=(404,))
        if response.status_code != 404:
            return tag_id
        self.tag_ids.forget(name)
        fresh = self.tag_id(name)
        if fresh == tag_id:
            raise PermanentError(
                "Kit has no subscriber with this address to tag",
                reason="no_such_subscriber",
                http_status=404,
            )
        self.client.request("POST", f"/tags/{fresh}/subscribers", json={"email_address": email})
        return fresh


class KitDestination(DestinationProvider):
    name = "kit"
    kind = "email"
    actions = {"subscribe": "enrollments", "tag": "enrollments", "unsubscribe": "enrollments"}
    default_api_base = "https://api.kit.com"
    options_schema = KitOptions

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        api, email = KitApi(ctx), require_email(event)
        if delivery.verb == "unsubscribe":
            return _unsubscribe(api, email)
        result: dict[str, Any] = {}
        if delivery.verb == "subscribe":
            subscriber = api.upsert(email, names(event)[0])
            result = {"subscriber": subscriber["id"], "state": subscriber.get("state")}
        tags = tags_for(ctx.config, ctx.destination, event)
        result["tags"] = {tag: api.tag(email, tag) for tag in tags}
        return result


def _unsubscribe(api: KitApi, email: str) -> dict[str, Any]:
    found = api.find(email)
    if found is None:
        return {"skipped": "no_such_subscriber"}
    if found.get("state") == "cancelled":
        return {"subscriber": found["id"], "already": "cancelled"}
    api.client.request("POST", f"/subscribers/{found['id']}/unsubscribe", json={})
    return {"subscriber": found["id"], "unsubscribed": True}


DESTINATION = KitDestination()
