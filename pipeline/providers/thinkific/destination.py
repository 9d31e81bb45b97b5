"""Thinkific as a destination: enroll and unenroll (revoke access) by e-mail and course.

Enrollments are create-only and the API has no idempotency key, so every enroll looks first
(`GET /enrollments?query[user_id]&query[course_id]`) and creates only when nothing is there;
the delivery ledger makes sure we never even look twice for a finished purchase. There is no
DELETE for enrollments: access is revoked by setting `expiry_date` to now.
"""

from __future__ import annotations

from typing import Any

from pipeline.providers.base import DeliveryRef, DestinationContext, DestinationProvider
from pipeline.providers.shared.contacts import names, require_email
from pipeline.providers.shared.instants import iso_utc
from pipeline.providers.shared.products import course_ids
from pipeline.providers.thinkific.api import DEFAULT_API_BASE, ThinkificApi, ThinkificOptions


class ThinkificDestination(DestinationProvider):
    name = "thinkific"
    kind = "courses"
    actions = {"enroll": "enrollments", "unenroll": "enrollments"}
    default_api_base = DEFAULT_API_BASE
    options_schema = ThinkificOptions

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        courses = course_ids(ctx.config, event)
        if not courses:
            return {"skipped": "no_course_for_these_products"}
        destination = ctx.destination
        api = ThinkificApi(
            destination.api_base, destination.options, ctx.http, destination.timeout_seconds
        )
        email = require_email(event)
        if delivery.verb == "enroll":
            user, new = api.find_or_create_user(email, *names(event))
            return {
                "user_id": user["id"],
                "enrollments": [_enroll(api, ctx, user["id"], c, new_user=new) for c in courses],
            }
        existing = api.find_user(email)
        if existing is None:
            return {"skipped": "no_such_user"}
        return {
            "user_id": existing["id"],
            "revoked": [_revoke(api, ctx, existing["id"], c) for c in courses],
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
