"""Thinkific's public API v1, as both directions use it.

API (Thinkific public API v1; OpenAPI mirrored in api-evangelist/thinkific): base
`https://api.thinkific.com/api/public/v1`, headers `X-Auth-API-Key` and `X-Auth-Subdomain`;
lists answer `{"items": [...], "meta": {"pagination": {...}}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from marshmallow import fields

from pipeline.delivery.http import ApiClient
from pipeline.errors import PermanentError
from pipeline.providers.shared.options import StrictOptions

API_PATH = "/api/public/v1"
DEFAULT_API_BASE = "https://api.thinkific.com"


class ThinkificOptions(StrictOptions):
    api_key = fields.Str(required=True)
    subdomain = fields.Str(required=True)


class ThinkificApi:
    def __init__(
        self,
        api_base: str | None,
        options: Mapping[str, Any],
        session: requests.Session,
        timeout: float = 10.0,
    ) -> None:
        self.client = ApiClient(
            provider="thinkific",
            base_url=(api_base or DEFAULT_API_BASE) + API_PATH,
            session=session,
            timeout=timeout,
            headers={
                "X-Auth-API-Key": options["api_key"],
                "X-Auth-Subdomain": options["subdomain"],
            },
        )

    def get(self, path: str) -> dict[str, Any] | None:
        """One object by path; None when Thinkific answers 404 (deleted since the webhook)."""
        response = self.client.request("GET", path, accept=(404,))
        if response.status_code == 404:
            return None
        found: dict[str, Any] = response.json()
        return found

    def find_user(self, email: str) -> dict[str, Any] | None:
        found = self.client.request("GET", "/users", params={"query[email]": email}).json()
        items = found.get("items") or []
        return items[0] if items else None

    def find_or_create_user(
        self, email: str, first: str | None, last: str | None
    ) -> tuple[dict[str, Any], bool]:
        """The user, and whether this call created it (a new user has no enrollments yet)."""
        user = self.find_user(email)
        if user is not None:
            return user, False
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
                raise PermanentError(
                    "Thinkific refused the new user", reason="user_rejected", http_status=422
                )
            return user, False
        created: dict[str, Any] = response.json()
        return created, True

    def find_enrollment(self, user_id: Any, course_id: str) -> dict[str, Any] | None:
        params = {"query[user_id]": user_id, "query[course_id]": course_id}
        items = self.client.request("GET", "/enrollments", params=params).json().get("items") or []
        return items[0] if items else None
