"""Teachable's public API (developers.teachable.com): the `apiKey` header, JSON, one client."""

from __future__ import annotations

from typing import Any

import requests

from pipeline.delivery.http import ApiClient, parse_retry_after
from pipeline.errors import (
    RetryableError,
)

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
