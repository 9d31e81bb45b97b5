"""ActiveCampaign as a destination: subscribe (contact sync + list), tag, unsubscribe (API v3).

Facts (ActiveCampaign's v3 reference as mirrored in api-evangelist/activecampaign
`openapi/activecampaign-{contacts,tags}-api-openapi.yml`; developers.activecampaign.com/reference/
url, /authentication, /rate-limits as quoted there):
- the base URL is the account's own (`https://<account>.api-us1.com`, shown in Settings ->
  Developer; never derive it from the account name) plus `/api/3`; header `Api-Token`;
- errors: `{"errors": [{"title", "detail", "code", "source"}]}` (422) or `{"message": …}` (404);
- 5 requests per second per account, shared by every key; the test fragment sets
  `rate_limit = "4/s"`, `burst = 1` (a token bucket allows `burst + rate` in any one second);
- `POST /contact/sync {"contact": {"email", "firstName", "lastName"}}` creates or updates by
  address (201 or 200 [U: codes]); it subscribes to nothing, so `subscribe` also puts the contact
  on `list_id` (`POST /contactLists`, status "1" subscribe, "2" unsubscribe), unless
  `subscribe_to_list = false`. Setting "1" re-subscribes someone who unsubscribed ("WARNING: If
  you change a status from unsubscribed to active, you can re-subscribe a contact to a list from
  which they had manually unsubscribed", update-list-status-for-contact), so, as Mailchimp's
  `status_if_new`: a contact created now, or not on the list, is subscribed; one already on it
  keeps its status (`GET /contacts/{id}/contactLists`: "1" active, "2" unsubscribed; "0"
  unconfirmed and "3" bounced as integrators report them [U]). Only the person opts back in;
- tags by name: `GET /tags?search=` matches "contains", so the exact name is picked from the
  results (ordered by `orders[search]=weight`: exact matches first); `POST /tags {"tag": {"tag",
  "tagType": "contact"}}` creates one; ids are cached in Redis. Whether `POST /contactTags` refuses
  a tag the contact already has is not documented [U], so the contact's tags are read first
  (`GET /contacts/{id}/contactTags`) and only missing ones are attached: a retry adds nothing;
- unsubscribe: `GET /contacts?email=` for the id, then status "2" on `list_id`.
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

API_PATH = "/api/3"
SUBSCRIBED, UNSUBSCRIBED = "1", "2"
STATUS_NAMES = {"0": "unconfirmed", "1": "subscribed", "2": "unsubscribed", "3": "bounced"}


class ActiveCampaignOptions(StrictOptions):
    api_key = fields.Str(required=True)
    list_id = fields.Str(required=True)
    subscribe_to_list = fields.Bool(load_default=True)
    tags = fields.List(fields.Str(), load_default=list)


class ActiveCampaignApi:
    def __init__(self, ctx: DestinationContext) -> None:
        self.client = destination_client(
            ctx,
            "activecampaign",
            path=API_PATH,
            headers={"Api-Token": ctx.destination.options["api_key"]},
        )
        self.tag_ids = IdCache.of(ctx.redis, ctx.destination, "tags")

    def sync(self, email: str, first: str | None, last: str | None) -> tuple[dict[str, Any], bool]:
        """The contact, and whether it was created just now."""
        body = {
            "email": email,
            **({"firstName": first} if first else {}),
            **({"lastName": last} if last else {}),
        }
        response = self.client.request("POST", "/contact/sync", json={"contact": body})
        return dict(response.json()["contact"]), response.status_code == 201

    def find(self, email: str) -> dict[str, Any] | None:
        found = self.client.request("GET", "/contacts", params={"email": email}).json()
        contacts = found.get("contacts") or []
        return dict(contacts[0]) if contacts else None

    def membership(self, contact_id: str, list_id: str) -> str | None:
        """The contact's status on the list, or None when it is not on it."""
        found = self.client.request("GET", f"/contacts/{contact_id}/contactLists").json()
        for membership in found.get("contactLists") or []:
            if str(membership.get("list")) == list_id:
                return str(membership.get("status"))
        return None

    def list_status(self, contact_id: str, list_id: str, status: str) -> None:
        body = {"contactList": {"list": list_id, "contact": contact_id, "status": status}}
        self.client.request("POST", "/contactLists", json=body)

    def tag_id(self, name: str) -> str:
        cached = self.tag_ids.get(name)
        if cached is not None:
            return cached
        found = self._search(name)
        if found is None:
            tag = {"tag": name, "tagType": "contact", "description": ""}
            response = self.client.request("POST", "/tags", json={"tag": tag}, accept=(422,))
            # 422: created meanwhile by another worker; read it back
            found = self._search(name) if response.status_code == 422 else response.json()["tag"]
        if found is None:
            raise PermanentError(
                "ActiveCampaign refused to create the tag and does not list it",
                reason="tag_not_found",
                http_status=422,
            )
        self.tag_ids.put({name: str(found["id"])})
        return str(found["id"])

    def _search(self, name: str) -> dict[str, Any] | None:
        params = {"search": name, "orders[search]": "weight", "limit": 100}
        tags = self.client.request("GET", "/tags", params=params).json().get("tags") or []
        exact = [
            t for t in tags if t.get("tag") == name and t.get("tagType", "contact") == "contact"
        ]
        return dict(exact[0]) if exact else None

    def contact_tags(self, contact_id: str) -> set[str]:
        found = self.client.request("GET", f"/contacts/{contact_id}/contactTags").json()
        return {str(link["tag"]) for link in found.get("contactTags") or []}

    def attach(self, contact_id: str, name: str, present: set[str]) -> str:
        """Attaches the tag unless the contact has it; returns the tag's id."""
        tag_id = self.tag_id(name)
        if tag_id in present:
            return tag_id
        link = {"contactTag": {"contact": contact_id, "tag": tag_id}}
        response = self.client.request("POST", "/contactTags", json=link, accept=(404,))
        if response.status_code == 404:
            # the cached tag was deleted in ActiveCampaign: look it up (or create it) once more
            self.tag_ids.forget(name)
            tag_id = self.tag_id(name)
            link["contactTag"]["tag"] = tag_id
            self.client.request("POST", "/contactTags", json=link)
        present.add(tag_id)
        return tag_id


class ActiveCampaignDestination(DestinationProvider):
    name = "activecampaign"
    kind = "email"
    actions = {"subscribe": "enrollments", "tag": "enrollments", "unsubscribe": "enrollments"}
    needs_api_base = True  # the account's own URL; there is no global one
    options_schema = ActiveCampaignOptions

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        api, email, options = ActiveCampaignApi(ctx), require_email(event), ctx.destination.options
        if delivery.verb == "unsubscribe":
            found = api.find(email)
            if found is None:
                return {"skipped": "no_such_contact"}
            api.list_status(str(found["id"]), options["list_id"], UNSUBSCRIBED)
            return {"contact": found["id"], "list": options["list_id"], "status": "unsubscribed"}
        contact, created = api.sync(email, *names(event))
        contact_id = str(contact["id"])
        result: dict[str, Any] = {"contact": contact_id, "created": created}
        if delivery.verb == "subscribe" and options["subscribe_to_list"]:
            result.update(_join_list(api, contact_id, options["list_id"], created))
        result["tags"] = _tag(
            api, contact_id, tags_for(ctx.config, ctx.destination, event), created
        )
        return result


def _join_list(
    api: ActiveCampaignApi, contact_id: str, list_id: str, created: bool
) -> dict[str, Any]:
    """Subscribed if new to the list; otherwise the status the person chose stays."""
    status = None if created else api.membership(contact_id, list_id)
    if status is None:
        api.list_status(contact_id, list_id, SUBSCRIBED)
        return {"list": list_id, "list_status": "subscribed"}
    # subscribed already, or opted out (unsubscribed, unconfirmed, bounced): not ours to undo
    return {"list": list_id, "list_status": STATUS_NAMES.get(status, status), "kept": True}


def _tag(api: ActiveCampaignApi, contact_id: str, tags: list[str], created: bool) -> dict[str, str]:
    if not tags:
        return {}
    present = set() if created else api.contact_tags(contact_id)
    return {name: api.attach(contact_id, name, present) for name in tags}


DESTINATION = ActiveCampaignDestination()
