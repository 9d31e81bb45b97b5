"""Teachable as a destination: enroll and unenroll a buyer (look before create: its API takes no idempotency key)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields

from pipeline.delivery.http import ApiClient
from pipeline.errors import (
    ConfigurationError,
    PermanentError,
)
from pipeline.providers.base import (
    DeliveryRef,
    DestinationContext,
    DestinationProvider,
)
from pipeline.providers.shared.contacts import require_email
from pipeline.providers.shared.products import course_ids
from pipeline.providers.teachable.api import DEFAULT_API_BASE, call, client


class TeachableDestinationOptions(Schema):
    class Meta:
        unknown = RAISE

    api_key = fields.Str(required=True)


class TeachableDestination(DestinationProvider):
    name = "teachable"
    kind = "courses"
    actions = {"enroll": "enrollments", "unenroll": "enrollments"}
    default_api_base = DEFAULT_API_BASE
    options_schema = TeachableDestinationOptions

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        courses = _numeric(course_ids(ctx.config, event))
        if not courses:
            return {"skipped": "no_course_for_these_products"}
        destination = ctx.destination
        api = client(
            destination.api_base,
            destination.options["api_key"],
            ctx.http,
            destination.timeout_seconds,
        )
        email = require_email(event)
        user = find_user(api, email)
        if delivery.verb == "unenroll":
            if user is None:
                return {"skipped": "no_such_user"}
            active = active_courses(api, user["id"])
            gone = [c for c in courses if c in active]
            for course in gone:
                call(api, "POST", "/unenroll", json={"user_id": user["id"], "course_id": course})
            return {"user_id": user["id"], "unenrolled": gone}
        user = user or create_user(api, email, event)
        active = active_courses(api, user["id"])
        added = [c for c in courses if c not in active]
        for course in added:
            call(api, "POST", "/enroll", json={"user_id": user["id"], "course_id": course})
        return {
            "user_id": user["id"],
            "enrolled": added,
            "already": [c for c in courses if c in active],
        }


def _numeric(courses: list[str]) -> list[int]:
    if not all(course.isdigit() for course in courses):
        raise ConfigurationError(
            "a Teachable course_id in [products] is not a number", reason="bad_course_id"
        )
    return [int(course) for course in courses]


def find_user(api: ApiClient, email: str) -> dict[str, Any] | None:
    users = call(api, "GET", "/users", params={"email": email}).json().get("users") or []
    wanted = email.strip().lower()
    return next((u for u in users if str(u.get("email", "")).lower() == wanted), None)


def create_user(api: ApiClient, email: str, event: dict[str, Any]) -> dict[str, Any]:
    contact = event.get("contact") or {}
    name = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
    body = {"email": email, "name": name or email.split("@", 1)[0], "src": "stackwire"}
    response = call(api, "POST", "/users", json=body, accept=(400, 422))
    if response.status_code in (400, 422):
        # created meanwhile by another delivery for the same person: read it back
        user = find_user(api, email)
        if user is None:
            raise PermanentError(
                "Teachable refused the new user",
                reason="user_rejected",
                http_status=response.status_code,
            )
        return user
    created: dict[str, Any] = response.json()
    return created.get("user", created)  # some documentation wraps the user, the API does not


def active_courses(api: ApiClient, user_id: Any) -> set[int]:
    detail = call(api, "GET", f"/users/{user_id}").json()
    courses = detail.get("courses") or (detail.get("user") or {}).get("courses") or []
    return {int(c["course_id"]) for c in courses if c.get("is_active_enrollment")}


DESTINATION = TeachableDestination()
