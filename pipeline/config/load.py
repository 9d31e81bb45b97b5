"""The creator's configuration: one TOML file, `${VAR}` read from the environment, validated.

`load_config` either returns a complete `Config` or raises `ConfigError` with one sentence
naming the key at fault; start-up prints it and stops.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError

from pipeline.config.model import (
    Action,
    AdminConfig,
    AdminToken,
    CircuitPolicy,
    Config,
    DestinationConfig,
    Flow,
    LanePolicy,
    Product,
    ServiceConfig,
    SourceConfig,
)
from pipeline.errors import ConfigError
from pipeline.keys import LANES
from pipeline.providers.registry import destination_provider, source_provider
from pipeline.redaction import remember_secrets
from schemas.canonical import CANONICAL_TYPES
from schemas.config import ConfigSchema

DEFAULT_ATTEMPT_WINDOWS = {"payments": 86_400.0, "enrollments": 86_400.0, "analytics": 21_600.0}
DEFAULT_MAX_HOLDS = {"payments": 259_200.0, "enrollments": 259_200.0, "analytics": 86_400.0}
DEFAULT_NICE = {"payments": 0, "enrollments": 0, "analytics": 10}
# ${NAME} or ${NAME:-default}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# options holding credentials (api_key, api_secret, client_secret, access_token, project_token,
# service_secret, signing_secret, api_token, password…) and webhook URLs, whose path is a secret
_SECRET_OPTION = re.compile(r"secret|key|token|password|credential", re.IGNORECASE)
_URL_OPTION = re.compile(r"(webhook_)?url", re.IGNORECASE)
_SECRET_HEADER = re.compile(r"auth|key|token|secret|signature|cookie|password", re.IGNORECASE)


def load_config(path: Path, environ: Mapping[str, str]) -> Config:
    """A TOML file, or a directory whose `*.toml` files are read in name order and merged."""
    if path.is_dir():
        raw: dict[str, Any] = {}
        for part in sorted(path.glob("*.toml")):
            merge(raw, _read(part), part.name)
    else:
        raw = _read(path)
    return build_config(raw, environ, path)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; name your config file in STACKWIRE_CONFIG"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def merge(into: dict[str, Any], part: Mapping[str, Any], origin: str, prefix: str = "") -> None:
    """Tables merge key by key, arrays of tables (flows) append; a key set twice is an error."""
    for key, value in part.items():
        label = f"{prefix}.{key}" if prefix else key
        if key not in into:
            into[key] = value
        elif isinstance(into[key], dict) and isinstance(value, Mapping):
            merge(into[key], value, origin, label)
        elif isinstance(into[key], list) and isinstance(value, list):
            into[key] = into[key] + value
        else:
            raise ConfigError(f"{label}: set again in {origin}")


def build_config(raw: Mapping[str, Any], environ: Mapping[str, str], path: Path) -> Config:
    interpolated = _interpolate(raw, environ, "")
    try:
        data = ConfigSchema().load(interpolated)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc.messages)) from None
    body_limit = data["service"]["max_body_bytes"]
    sources = {name: _source(name, spec, body_limit) for name, spec in data["sources"].items()}
    destinations = {name: _destination(name, spec) for name, spec in data["destinations"].items()}
    flows = tuple(_flow(i, spec, sources, destinations) for i, spec in enumerate(data["flows"]))
    products = {key: _product(key, spec) for key, spec in data["products"].items()}
    service = data["service"]
    admin = _admin(data["admin"])
    remember_secrets(
        secret_values(sources.values(), destinations.values()) | {t.token for t in admin.tokens}
    )
    return Config(
        path=path,
        service=ServiceConfig(
            public_url=service["public_url"],
            max_body_bytes=service["max_body_bytes"],
            redelivery_grace=service["redelivery_grace"],
        ),
        lanes=_lanes(data["lanes"]),
        sources=sources,
        destinations=destinations,
        products=products,
        flows=flows,
        admin=admin,
    )


def _admin(spec: Mapping[str, Any]) -> AdminConfig:
    tokens = tuple(
        AdminToken(name=t["name"], scope=t["scope"], token=t["token"])
        for t in spec["tokens"]
        if t["token"]
    )
    return AdminConfig(tokens=tokens, rate_limit=spec["rate_limit"], burst=spec["burst"])


def secret_values(
    sources: Iterable[SourceConfig], destinations: Iterable[DestinationConfig]
) -> set[str]:
    """Every configured value that is a secret, to be masked in whatever is stored or logged:
    signing secrets, credential options (by name), and webhook URLs (whose path is the secret)."""
    found: set[str] = set()
    for source in sources:
        found.update(source.signing_secrets)
        found.update(_secret_options(source.options))
    for destination in destinations:
        found.update(_secret_options(destination.options))
    return found


def _secret_options(options: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for key, value in options.items():
        if isinstance(value, str) and _SECRET_OPTION.search(key):
            found.add(value)
        elif isinstance(value, str) and _URL_OPTION.fullmatch(key):
            found.update((value, urlsplit(value).path))
        elif isinstance(value, Mapping):  # headers: the values of credential-bearing names
            found.update(
                v for k, v in value.items() if isinstance(v, str) and _SECRET_HEADER.search(k)
            )
    return found


def _interpolate(value: Any, environ: Mapping[str, str], key: str) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if environ.get(name):
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{key}: environment variable {name} is not set")

        return _VAR.sub(substitute, value)
    if isinstance(value, Mapping):
        return {
            k: _interpolate(v, environ, f"{key}.{k}" if key else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, environ, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _first_error(messages: Any, prefix: str = "") -> str:
    """Flattens marshmallow's nested error dict into 'sources.stripe.api_base: Not a valid URL.'"""
    if isinstance(messages, Mapping):
        # a typo shows up as an unknown key *and* a missing one: name the typo first
        items = sorted(messages.items(), key=lambda item: item[1] != ["Unknown field."])
        for key, inner in items:
            if key == "_schema":
                return _first_error(inner, prefix)
            found = inner
            if isinstance(inner, Mapping) and set(inner) <= {"key", "value"}:
                found = inner.get("key") or inner.get("value")  # errors inside a Dict field
            label = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}"
            return _first_error(found, label.lstrip("."))
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], prefix)
    return f"{prefix}: {messages}" if prefix else str(messages)


def _provider_options(kind: str, name: str, spec: dict[str, Any], schema: Any) -> dict[str, Any]:
    common = {
        "provider",
        "signing_secrets",
        "api_base",
        "tolerance_seconds",
        "on_unknown_fields",
        "max_body_bytes",
        "enabled",
        "rate_limit",
        "burst",
        "lane",
        "timeout_seconds",
        "circuit",
        "contract_version",
        "unverified_rate_limit",
        "unverified_burst",
    }
    extra = {k: v for k, v in spec.items() if k not in common}
    if schema is None:
        if extra:
            key = sorted(extra)[0]
            raise ConfigError(f"{kind}.{name}.{key}: Unknown field.")
        return {}
    try:
        loaded: dict[str, Any] = schema().load(extra)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc.messages, f"{kind}.{name}")) from None
    return loaded


def _source(name: str, spec: dict[str, Any], body_limit: int) -> SourceConfig:
    provider = source_provider(spec["provider"])
    if provider is None:
        raise ConfigError(f"sources.{name}.provider: unknown source provider {spec['provider']!r}")
    options = _provider_options("sources", name, spec, provider.options_schema)
    secrets = tuple(spec["signing_secrets"])
    if provider.needs_secrets and not secrets:
        raise ConfigError(f"sources.{name}.signing_secrets: at least one secret is required")
    if provider.needs_api_base and not spec["api_base"]:
        raise ConfigError(f"sources.{name}.api_base: required for provider {provider.name!r}")
    return SourceConfig(
        name=name,
        provider=provider,
        signing_secrets=secrets,
        api_base=(spec["api_base"] or provider.default_api_base or "").rstrip("/") or None,
        tolerance_seconds=spec["tolerance_seconds"],
        on_unknown_fields=spec["on_unknown_fields"] or provider.default_on_unknown_fields,
        max_body_bytes=spec["max_body_bytes"] or body_limit,
        enabled=spec["enabled"],
        options=options,
        contract_version=spec["contract_version"],
        **_unverified_rate(spec, provider.default_unverified_rate),
    )


def _unverified_rate(spec: dict[str, Any], default: tuple[float, int] | None) -> dict[str, Any]:
    rate = spec["unverified_rate_limit"] or (default[0] if default else None)
    burst = spec["unverified_burst"] or (default[1] if default else 1)
    return {"unverified_rate_limit": rate, "unverified_burst": burst}


def _destination(name: str, spec: dict[str, Any]) -> DestinationConfig:
    provider = destination_provider(spec["provider"])
    if provider is None:
        raise ConfigError(
            f"destinations.{name}.provider: unknown destination provider {spec['provider']!r}"
        )
    options = _provider_options("destinations", name, spec, provider.options_schema)
    api_base = spec["api_base"] or provider.default_api_base
    if provider.needs_api_base and not api_base:
        raise ConfigError(f"destinations.{name}.api_base: required for provider {provider.name!r}")
    return DestinationConfig(
        name=name,
        provider=provider,
        api_base=api_base.rstrip("/") if api_base else None,
        rate_limit=spec["rate_limit"],
        burst=spec["burst"],
        lane=spec["lane"],
        timeout_seconds=spec["timeout_seconds"],
        circuit=_circuit(f"destinations.{name}.circuit", spec["circuit"]),
        options=options,
    )


def _flow(
    index: int,
    spec: dict[str, Any],
    sources: Mapping[str, SourceConfig],
    destinations: Mapping[str, DestinationConfig],
) -> Flow:
    on = spec["on"]
    if not any(fnmatch.fnmatchcase(t, on) for t in CANONICAL_TYPES):
        raise ConfigError(f"flows[{index}].on: {on!r} matches no canonical event type")
    actions = []
    for position, text in enumerate(spec["do"]):
        destination, verb = text.split(".", 1)
        if destination not in destinations:
            raise ConfigError(
                f"flows[{index}].do[{position}]: no destination named {destination!r}"
            )
        provider = destinations[destination].provider
        if verb not in provider.actions:
            known = ", ".join(sorted(provider.actions))
            raise ConfigError(
                f"flows[{index}].do[{position}]: destination {destination!r} cannot {verb!r}"
                f" (it can: {known})"
            )
        actions.append(Action(destination, verb))
    for source in spec["sources"] or ():
        if source not in sources:
            raise ConfigError(f"flows[{index}].sources: no source named {source!r}")
    flow_sources = tuple(spec["sources"]) if spec["sources"] is not None else None
    return Flow(on=on, actions=tuple(actions), sources=flow_sources)


def _product(key: str, spec: dict[str, Any]) -> Product:
    return Product(
        key=key,
        name=spec["name"],
        course_id=spec["course_id"],
        offer_id=spec["offer_id"],
        tags=tuple(spec["tags"]),
    )


def _lanes(spec: Mapping[str, Mapping[str, Any]]) -> dict[str, LanePolicy]:
    lanes = {}
    for lane in LANES:
        given = spec.get(lane, {})
        lanes[lane] = LanePolicy(
            name=lane,
            attempt_window=given.get("attempt_window") or DEFAULT_ATTEMPT_WINDOWS[lane],
            concurrency=given.get("concurrency", 1),
            nice=DEFAULT_NICE[lane] if given.get("nice") is None else given["nice"],
            max_hold=given.get("max_hold") or DEFAULT_MAX_HOLDS[lane],
        )
    return lanes


def _circuit(key: str, spec: Mapping[str, Any]) -> CircuitPolicy:
    policy = CircuitPolicy(**spec)
    if policy.max_cooldown < policy.cooldown:
        raise ConfigError(f"{key}.max_cooldown: shorter than the cooldown it grows from")
    if policy.failure_threshold > policy.minimum_calls:
        raise ConfigError(
            f"{key}.failure_threshold: more than minimum_calls, so it could never open"
        )
    return policy
