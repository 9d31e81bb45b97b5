"""The HTTP client a destination calls its provider with: its base URL, our session, its timeout."""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.delivery.http import ApiClient
from pipeline.providers.base import DestinationContext


def destination_client(
    ctx: DestinationContext,
    provider: str,
    *,
    path: str = "",
    base_url: str | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    shown_path: str | None = None,
) -> ApiClient:
    """A client for the destination's `api_base` plus the API's `path` (or for `base_url`, when
    the address is an option, as for webhooks), bound to the shared session and the
    destination's own timeout. `shown_path` stands in for the path in attempt rows and traces
    when the path is the secret (a webhook URL)."""
    return ApiClient(
        provider=provider,
        base_url=(ctx.destination.api_base or "") + path if base_url is None else base_url,
        session=ctx.http,
        timeout=ctx.destination.timeout_seconds,
        headers=headers or {},
        auth=auth,
        shown_path=shown_path,
    )
