"""The configuration as the rest of Stackwire sees it: frozen dataclasses, built by `pipeline.config.load`.

This module imports nothing else of Stackwire at run time, so any layer can hold a `Config`. Each
source and destination carries its provider object, resolved once when the file is loaded.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.providers.base import DestinationProvider, SourceProvider


@dataclass(frozen=True)
class SourceConfig:
    name: str
    provider: SourceProvider = field(repr=False)
    signing_secrets: tuple[str, ...] = field(repr=False)
    api_base: str | None
    tolerance_seconds: int
    on_unknown_fields: str
    max_body_bytes: int
    enabled: bool
    options: Mapping[str, Any] = field(repr=False)
    contract_version: int | None = None
    # events per second (and burst) stored before they are verified; None: no limit
    unverified_rate_limit: float | None = None
    unverified_burst: int = 1


@dataclass(frozen=True)
class CircuitPolicy:
    """When a destination's breaker opens and how it recovers (see delivery/gates/circuit.py)."""

    failure_rate: float = 0.5
    minimum_calls: int = 10
    failure_threshold: int = 5
    window: float = 30.0
    cooldown: float = 5.0
    max_cooldown: float = 300.0
    probes: int = 3
    alert_after: float = 600.0


@dataclass(frozen=True)
class DestinationConfig:
    name: str
    provider: DestinationProvider = field(repr=False)
    api_base: str | None
    rate_limit: float | None
    burst: int | None
    lane: str | None
    timeout_seconds: float
    circuit: CircuitPolicy
    options: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Product:
    key: str
    name: str | None
    course_id: int | str | None
    offer_id: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Action:
    destination: str
    verb: str

    @property
    def name(self) -> str:
        return f"{self.destination}.{self.verb}"


@dataclass(frozen=True)
class Flow:
    on: str
    actions: tuple[Action, ...]
    sources: tuple[str, ...] | None

    def matches(self, canonical_type: str, source: str) -> bool:
        if self.sources is not None and source not in self.sources:
            return False
        return fnmatch.fnmatchcase(canonical_type, self.on)


@dataclass(frozen=True)
class LanePolicy:
    name: str
    attempt_window: float
    concurrency: int
    nice: int
    max_hold: float


@dataclass(frozen=True)
class ServiceConfig:
    public_url: str | None
    max_body_bytes: int
    redelivery_grace: float


@dataclass(frozen=True)
class AdminToken:
    name: str
    scope: str  # "read" < "replay" < "admin"
    token: str = field(repr=False)


@dataclass(frozen=True)
class AdminConfig:
    """The admin API's tokens from the config; STACKWIRE_ADMIN_TOKEN adds one `admin` token."""

    tokens: tuple[AdminToken, ...] = ()
    rate_limit: float = 20.0
    burst: int = 60


@dataclass(frozen=True)
class Config:
    path: Path
    service: ServiceConfig
    lanes: Mapping[str, LanePolicy]
    sources: Mapping[str, SourceConfig]
    destinations: Mapping[str, DestinationConfig]
    products: Mapping[str, Product]
    flows: tuple[Flow, ...]
    admin: AdminConfig = field(default_factory=AdminConfig)

    def actions_for(self, canonical_type: str, source: str) -> list[Action]:
        """Every action the flows ask for on this event, once each, in the order written."""
        seen: dict[str, Action] = {}
        for flow in self.flows:
            if flow.matches(canonical_type, source):
                for action in flow.actions:
                    seen.setdefault(action.name, action)
        return list(seen.values())
