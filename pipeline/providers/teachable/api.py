"""Teachable's public API (developers.teachable.com): the `apiKey` header, JSON, one client."""

from __future__ import annotations

from typing import Any

import requests

from pipeline.delivery.http import ApiClient, parse_retry_after
from pipeline.errors import PermanentError, RetryableError

DEFAULT_API_BASE = "https://developers.teachable.com"


def client(
    api_base: str | None, api_key: str, session: requests.Session, timeout: float
) -> ApiClient:
    return ApiClient(
        provider="teachable",
        base_url=(api_base or DEFAULT_API_BASE) + "/v1",
        session=session,
        timeout=timeout,
        headers={"apiKey": api_key, "Accept": "application/json"},
    )


def call(
    api: ApiClient, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any
) -> requests.Response:
    """One request; a 429 is retried after Teachable's `RateLimit-Reset` seconds."""
    response = api.request(method, path, accept=(*accept, 429), **kwargs)
    if response.status_code == 429:
        wait = parse_retry_after(response.headers.get("RateLimit-Reset"))
        raise RetryableError(
            "teachable answered 429", retry_after=wait, reason="http_429", http_status=429
        )
    return response


def find_user(api: ApiClient, email: str) -> dict[str, Any] | None:
    users = call(api, "GET", "/users", params={"email": email}).json().get("users") or []
    wanted = email.strip().lower()
    return next((u for u in users if str(u.get("email", "")).lower() == wanted), None)


def create_user(api: ApiClient, email: str, name: str | None) -> dict[str, Any]:
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
