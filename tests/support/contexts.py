"""Factories for what provider, signature and gate tests build by hand: configs and contexts.

A test names the provider object (`pipeline.providers.stripe.source.SOURCE`, not "stripe") and
only the values it cares about; the rest are the loader's defaults, except that `api_base` stays
None unless given (a test says which API it talks to) and unknown fields are only logged ("warn").
A context without a Redis gets `NoRedis`, which fails the test if anything sends it a command.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import redis
import requests
from werkzeug.datastructures import Headers

from pipeline.config.model import (
    CircuitPolicy,
    Config,
    DestinationConfig,
    ServiceConfig,
    SourceConfig,
)
from pipeline.delivery.http import build_session
from pipeline.providers.base import (
    DestinationContext,
    DestinationProvider,
    SourceContext,
    SourceProvider,
)

MAX_BODY_BYTES = 262_144  # the service's default limit


class NoRedis(redis.Redis):
    """The Redis of a context whose test needs none: it never connects, and any command (or a
    pipeline) fails the test, naming the command."""

    def __init__(self) -> None:
        super().__init__(host="no-redis.invalid")

    def execute_command(self, *args: Any, **options: Any) -> Any:
        raise AssertionError(f"this test's context has no Redis, yet it was sent {args[:1]!r}")

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Any:
        raise AssertionError("this test's context has no Redis, yet a pipeline was opened")


def source_config(
    provider: SourceProvider,
    name: str | None = None,
    *,
    signing_secrets: tuple[str, ...] = ("test-secret",),
    api_base: str | None = None,
    tolerance_seconds: int = 300,
    on_unknown_fields: str = "warn",
    max_body_bytes: int = MAX_BODY_BYTES,
    enabled: bool = True,
    options: Mapping[str, Any] | None = None,
    contract_version: int | None = None,
) -> SourceConfig:
    """A source of `provider`, named after it unless `name` says otherwise."""
    return SourceConfig(
        name=provider.name if name is None else name,
        provider=provider,
        signing_secrets=signing_secrets,
        api_base=api_base,
        tolerance_seconds=tolerance_seconds,
        on_unknown_fields=on_unknown_fields,
        max_body_bytes=max_body_bytes,
        enabled=enabled,
        options={} if options is None else options,
        contract_version=contract_version,
    )


def destination_config(
    provider: DestinationProvider,
    name: str | None = None,
    *,
    api_base: str | None = None,
    rate_limit: float | None = None,
    burst: int | None = None,
    lane: str | None = None,
    timeout_seconds: float = 10.0,
    circuit: CircuitPolicy | None = None,
    options: Mapping[str, Any] | None = None,
) -> DestinationConfig:
    """A destination of `provider`, named after it unless `name` says otherwise."""
    return DestinationConfig(
        name=provider.name if name is None else name,
        provider=provider,
        api_base=api_base,
        rate_limit=rate_limit,
        burst=burst,
        lane=lane,
        timeout_seconds=timeout_seconds,
        circuit=CircuitPolicy() if circuit is None else circuit,
        options={} if options is None else options,
    )


def config_of(*destinations: DestinationConfig, sources: Iterable[SourceConfig] = ()) -> Config:
    """A config holding just these destinations and sources: no lanes, products or flows."""
    return Config(
        path=Path("test.toml"),
        service=ServiceConfig(
            public_url=None, max_body_bytes=MAX_BODY_BYTES, redelivery_grace=10.0
        ),
        lanes={},
        sources={source.name: source for source in sources},
        destinations={destination.name: destination for destination in destinations},
        products={},
        flows=(),
    )


def source_context(
    source: SourceConfig,
    *,
    http: requests.Session | None = None,
    redis: redis.Redis | None = None,
    now: float | None = None,
) -> SourceContext:
    """What the tasks hand a source: a fresh production session, no Redis, and the time now."""
    return SourceContext(
        source=source,
        http=build_session() if http is None else http,
        redis=NoRedis() if redis is None else redis,
        now=time.time() if now is None else now,
    )


def destination_context(
    destination: DestinationConfig,
    config: Config | None = None,
    *,
    http: requests.Session | None = None,
    redis: redis.Redis | None = None,
    now: float | None = None,
) -> DestinationContext:
    """What the tasks hand a destination; without `config`, one holding only this destination."""
    return DestinationContext(
        destination=destination,
        config=config_of(destination) if config is None else config,
        http=build_session() if http is None else http,
        redis=NoRedis() if redis is None else redis,
        now=time.time() if now is None else now,
    )


def received_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> Mapping[str, str]:
    """Headers as the receiver hands them to a signature scheme: werkzeug's case-insensitive
    `Headers`, which reads like a `Mapping[str, str]` (`[]`, `get`, `items`) without being one,
    hence the cast (the receiver passes `request.headers` the same way)."""
    return cast("Mapping[str, str]", Headers(headers))
