"""Thinkific as a destination: enroll and unenroll (revoke access) by e-mail and course.

API (Thinkific public API v1; OpenAPI mirrored in api-evangelist/thinkific): base
`https://api.thinkific.com/api/public/v1`, headers `X-Auth-API-Key` and `X-Auth-Subdomain`.
Enrollments are create-only and the API has no idempotency key, so every enroll looks first
(`GET /enrollments?query[user_id]&query[course_id]`) and creates only when nothing is there;
the delivery ledger makes sure we never even look twice for a finished purchase. There is no
DELETE for enrollments: access is revoked by setting `expiry_date` to now.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields

from pipeline.canonical import iso_utc
from pipeline.errors import PermanentError
from pipeline.http import ApiClient
from pipeline.providers.base import DeliveryRef, DestinationContext, DestinationProvider
from pipeline.providers.common import course_ids, names, require_email

API_PATH = "/api/public/v1"


class ThinkificOptions(Schema):
    class Meta:
        unknown = RAISE

    api_key = fields.Str(required=True)
    subdomain = fields.Str(required=True)


class ThinkificApi:
    def __init__(self, ctx: DestinationContext) -> None:
        options = ctx.destination.options
        self.client = ApiClient(
            provider="thinkific",
            base_url=(ctx.destination.api_base or "") + API_PATH,
            session=ctx.http,
            timeout=ctx.destination.timeout_seconds,
            headers={
                "X-Auth-API-Key": options["api_key"],
                "X-Auth-Subdomain": options["subdomain"],
            },
        )

    def find_user(self, email: str) -> dict[str, Any] | None:
        found = self.client.request("GET", "/users", params={"query[email]": email}).json()
        items = found.get("items") or []
        return items[0] if items else None

    def find_or_create_user(
        self, email: str, first: str | None, last: str | None
    ) -> dict[str, Any]:
        user = self.find_user(email)
        if user is not None:
            return user
        body = {
            "email": email,
            "first_name": first or email.split("@", 1)[0],
            "last_name": last or "-",  # Thinkific requires a last name
        }
        response = self.client.request("POST", "/users", json=body, accept=(422,))
        if response.status_code == 422:
            # created meanwhile by another delivery for the same person: read it back
            user = self.find_user(email)
            if user is None:
                raise PermanentError("Thinkific refused the new user", reason="user_rejected",
                                     http_status=422)  # fmt: skip
            return user
        created: dict[str, Any] = response.json()
        return created

    def find_enrollment(self, user_id: Any, course_id: str) -> dict[str, Any] | None:
        params = {"query[user_id]": user_id, "query[course_id]": course_id}
        items = self.client.request("GET", "/enrollments", params=params).json().get("items") or []
        return items[0] if items else None


class ThinkificDestination(DestinationProvider):
    name = "thinkific"
    kind = "courses"
    actions = {"enroll": "enrollments", "unenroll": "enrollments"}
    default_api_base = "https://api.thinkific.com"
    options_schema = ThinkificOptions

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        courses = course_ids(ctx.config, event)
        if not courses:
            return {"skipped": "no_course_for_these_products"}
        api = ThinkificApi(ctx)
        email = require_email(event)
        if delivery.verb == "enroll":
            user = api.find_or_create_user(email, *names(event))
            return {
                "user_id": user["id"],
                "enrollments": [_enroll(api, ctx, user["id"], c) for c in courses],
            }
        existing = api.find_user(email)
        if existing is None:
            return {"skipped": "no_such_user"}
        return {
            "user_id": existing["id"],
            "revoked": [_revoke(api, ctx, existing["id"], c) for c in courses],
        }


def _enroll(api: ThinkificApi, ctx: DestinationContext, user_id: Any, course_id: str) -> Any:
    existing = api.find_enrollment(user_id, course_id)
    now = iso_utc(ctx.now)
    if existing is None:
        body = {"course_id": int(course_id), "user_id": user_id, "activated_at": now}
        return api.client.request("POST", "/enrollments", json=body).json()["id"]
    if existing.get("expired"):
        # bought again after a refund: give access back on the same enrollment
        body = {"activated_at": now, "expiry_date": None}
        api.client.request("PUT", f"/enrollments/{existing['id']}", json=body)
    return existing["id"]


def _revoke(api: ThinkificApi, ctx: DestinationContext, user_id: Any, course_id: str) -> Any:
    existing = api.find_enrollment(user_id, course_id)
    if existing is None or existing.get("expired"):
        return None
    body = {"expiry_date": iso_utc(ctx.now)}
    api.client.request("PUT", f"/enrollments/{existing['id']}", json=body)
    return existing["id"]


DESTINATION = ThinkificDestination()
