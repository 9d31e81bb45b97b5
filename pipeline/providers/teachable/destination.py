"""Teachable as a destination: enroll and unenroll a buyer (look before create: its API takes no idempotency key)."""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from pipeline.config.model import Config
from pipeline.delivery.http import ApiClient
from pipeline.errors import ConfigurationError
from pipeline.providers.base import DestinationContext
from pipeline.providers.shared.contacts import full_name
from pipeline.providers.shared.courses import CoursePlatform, held_and_missing
from pipeline.providers.shared.options import StrictOptions
from pipeline.providers.shared.products import course_ids
from pipeline.providers.teachable.api import (
    DEFAULT_API_BASE,
    active_courses,
    call,
    client,
    create_user,
    find_user,
)


class TeachableDestinationOptions(StrictOptions):
    api_key = fields.Str(required=True)


class TeachableDestination(CoursePlatform[ApiClient, int, dict[str, Any]]):
    name = "teachable"
    default_api_base = DEFAULT_API_BASE
    options_schema = TeachableDestinationOptions

    def grants(self, config: Config, event: dict[str, Any]) -> list[int]:
        return _numeric(course_ids(config, event))

    def connect(self, ctx: DestinationContext) -> ApiClient:
        destination = ctx.destination
        return client(
            destination.api_base,
            destination.options["api_key"],
            ctx.http,
            destination.timeout_seconds,
        )

    def enrollee(self, api: ApiClient, email: str, event: dict[str, Any]) -> dict[str, Any]:
        return find_user(api, email) or create_user(api, email, full_name(event))

    def enroll(
        self, api: ApiClient, ctx: DestinationContext, enrollee: dict[str, Any], grants: list[int]
    ) -> dict[str, Any]:
        already, added = held_and_missing(grants, active_courses(api, enrollee["id"]))
        _post_each(api, "/enroll", enrollee["id"], added)
        return {"user_id": enrollee["id"], "enrolled": added, "already": already}

    def account(self, api: ApiClient, email: str) -> dict[str, Any] | None:
        return find_user(api, email)

    def unenroll(
        self, api: ApiClient, ctx: DestinationContext, account: dict[str, Any], grants: list[int]
    ) -> dict[str, Any]:
        gone, _ = held_and_missing(grants, active_courses(api, account["id"]))
        _post_each(api, "/unenroll", account["id"], gone)
        return {"user_id": account["id"], "unenrolled": gone}


def _post_each(api: ApiClient, path: str, user_id: Any, courses: list[int]) -> None:
    # one course a call: the API takes no list
    for course in courses:
        call(api, "POST", path, json={"user_id": user_id, "course_id": course})


def _numeric(courses: list[str]) -> list[int]:
    if not all(course.isdigit() for course in courses):
        raise ConfigurationError(
            "a Teachable course_id in [products] is not a number", reason="bad_course_id"
        )
    return [int(course) for course in courses]


DESTINATION = TeachableDestination()
