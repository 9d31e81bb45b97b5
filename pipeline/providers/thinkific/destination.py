"""Thinkific as a destination: enroll and unenroll (revoke access) by e-mail and course.

Enrollments are create-only and the API has no idempotency key, so every enroll looks first
(`GET /enrollments?query[user_id]&query[course_id]`) and creates only when nothing is there;
the delivery ledger makes sure we never even look twice for a finished purchase. There is no
DELETE for enrollments: access is revoked by setting `expiry_date` to now.
"""

from __future__ import annotations

from typing import Any

from pipeline.providers.base import DestinationContext
from pipeline.providers.shared.contacts import names
from pipeline.providers.shared.courses import CoursePlatform
from pipeline.providers.shared.instants import iso_utc
from pipeline.providers.thinkific.api import DEFAULT_API_BASE, ThinkificApi, ThinkificOptions

# the user, and whether this very call created it
Enrollee = tuple[dict[str, Any], bool]


class ThinkificDestination(CoursePlatform[ThinkificApi, str, Enrollee]):
    name = "thinkific"
    default_api_base = DEFAULT_API_BASE
    options_schema = ThinkificOptions

    def connect(self, ctx: DestinationContext) -> ThinkificApi:
        destination = ctx.destination
        return ThinkificApi(
            destination.api_base, destination.options, ctx.http, destination.timeout_seconds
        )

    def enrollee(self, api: ThinkificApi, email: str, event: dict[str, Any]) -> Enrollee:
        return api.find_or_create_user(email, *names(event))

    def enroll(
        self, api: ThinkificApi, ctx: DestinationContext, enrollee: Enrollee, grants: list[str]
    ) -> dict[str, Any]:
        user, new = enrollee
        return {
            "user_id": user["id"],
            "enrollments": [_enroll(api, ctx, user["id"], c, new_user=new) for c in grants],
        }

    def account(self, api: ThinkificApi, email: str) -> dict[str, Any] | None:
        return api.find_user(email)

    def unenroll(
        self,
        api: ThinkificApi,
        ctx: DestinationContext,
        account: dict[str, Any],
        grants: list[str],
    ) -> dict[str, Any]:
        return {
            "user_id": account["id"],
            "revoked": [_revoke(api, ctx, account["id"], c) for c in grants],
        }


def _enroll(
    api: ThinkificApi, ctx: DestinationContext, user_id: Any, course_id: str, *, new_user: bool
) -> Any:
    # a user this very call created cannot be enrolled yet: no need to look first
    existing = None if new_user else api.find_enrollment(user_id, course_id)
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
