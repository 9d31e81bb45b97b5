"""The contract of the TOML configuration file.

The file's top-level shape and the keys every source and destination share are checked here;
provider-specific keys are checked by the provider's own `options_schema` (see
`pipeline.providers`), so a typo in any key is named, never ignored.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import (
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from pipeline.keys import LANES

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_RATE_SECONDS |= {"h": 3600, "hour": 3600}


def parse_rate(text: str) -> float:
    """'2/s' -> 2.0 requests per second; '120/m' -> 2.0."""
    match = _RATE.match(text)
    if not match:
        raise ValidationError(f"{text!r} is not a rate; write it like '2/s' or '120/m'.")
    count, unit = float(match.group(1)), match.group(2)
    if count <= 0:
        raise ValidationError("A rate must be greater than zero.")
    return count / _RATE_SECONDS[unit]


def parse_duration(text: str | int | float) -> float:
    """'24h' -> 86400.0 seconds; bare numbers are seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValidationError(f"{text!r} is not a duration; write it like '90s', '30m' or '24h'.")
    return float(match.group(1)) * _DURATION_SECONDS[match.group(2)]


class Rate(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if not isinstance(value, str):
            raise ValidationError("A rate is a string like '2/s'.")
        return parse_rate(value)


class Duration(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        return parse_duration(value)


class HttpUrl(fields.Url):
    """An http(s) URL; loopback hosts are allowed so the sandbox can stand in for a provider."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(require_tld=False, schemes={"http", "https"}, **kwargs)


class ServiceSchema(Schema):
    class Meta:
        unknown = RAISE

    public_url = HttpUrl(load_default=None)
    max_body_bytes = fields.Int(load_default=262_144, validate=validate.Range(1024, 10_485_760))
    redelivery_grace = Duration(load_default=10.0)


class LaneSchema(Schema):
    class Meta:
        unknown = RAISE

    attempt_window = Duration()
    concurrency = fields.Int(load_default=1, validate=validate.Range(1, 64))
    # CPU priority of the lane's workers (Unix nice, 0-19): analytics yields to money and access
    nice = fields.Int(load_default=None, validate=validate.Range(0, 19))
    # held work (destination paused or broken) is dead-lettered this long after it was planned
    max_hold = Duration()


class SourceSchema(Schema):
    """Keys every source shares; the rest is passed on to the provider's options schema."""

    class Meta:
        unknown = INCLUDE

    provider = fields.Str(required=True)
    signing_secrets = fields.List(fields.Str(validate=validate.Length(min=1)), load_default=list)
    api_base = HttpUrl(load_default=None)
    tolerance_seconds = fields.Int(load_default=300, validate=validate.Range(1, 86_400))
    on_unknown_fields = fields.Str(load_default=None, validate=validate.OneOf(["warn", "reject"]))
    max_body_bytes = fields.Int(load_default=None, validate=validate.Range(1024, 10_485_760))
    enabled = fields.Bool(load_default=True)
    # pin the payload contract version; None follows the newest the code knows
    contract_version = fields.Int(load_default=None, validate=validate.Range(1, 1000))
    # events stored before their authenticity is proven (PayPal's postback): beyond this the
    # receiver answers 429 with Retry-After; the provider's default when unset
    unverified_rate_limit = Rate(load_default=None)
    unverified_burst = fields.Int(load_default=None, validate=validate.Range(1, 100_000))


class CircuitSchema(Schema):
    """The breaker opens when, over `window`, at least `minimum_calls` calls were made, at least
    `failure_threshold` failed and failures are at least `failure_rate` of them."""

    class Meta:
        unknown = RAISE

    failure_rate = fields.Float(load_default=0.5, validate=validate.Range(0.01, 1.0))
    minimum_calls = fields.Int(load_default=10, validate=validate.Range(1, 100_000))
    failure_threshold = fields.Int(load_default=5, validate=validate.Range(1, 100_000))
    window = Duration(load_default=30.0, validate=validate.Range(1.0, 3600.0))
    # the first open's wait; doubled while probes keep failing, up to max_cooldown
    cooldown = Duration(load_default=5.0, validate=validate.Range(0.1, 3600.0))
    max_cooldown = Duration(load_default=300.0, validate=validate.Range(0.1, 86_400.0))
    probes = fields.Int(load_default=3, validate=validate.Range(1, 100))
    # alert when the circuit has been open this long
    alert_after = Duration(load_default=600.0)


class DestinationSchema(Schema):
    class Meta:
        unknown = INCLUDE

    provider = fields.Str(required=True)
    api_base = HttpUrl(load_default=None)
    rate_limit = Rate(load_default=None)
    burst = fields.Int(load_default=None, validate=validate.Range(1, 10_000))
    lane = fields.Str(load_default=None, validate=validate.OneOf(LANES))
    timeout_seconds = fields.Float(load_default=10.0, validate=validate.Range(0.1, 120))
    circuit = fields.Nested(CircuitSchema, load_default=lambda: CircuitSchema().load({}))


class ProductSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.Str(load_default=None)
    course_id = fields.Raw(load_default=None)
    offer_id = fields.Str(load_default=None)
    tags = fields.List(fields.Str(validate=validate.Length(min=1, max=100)), load_default=list)

    @validates_schema
    def _course_id_is_an_id(self, data: dict[str, Any], **kwargs: Any) -> None:
        course_id = data.get("course_id")
        if course_id is not None and not isinstance(course_id, int | str):
            raise ValidationError("A course id is a number or a string.", "course_id")


class FlowSchema(Schema):
    class Meta:
        unknown = RAISE

    on = fields.Str(required=True, validate=validate.Length(min=3))
    do = fields.List(fields.Str(validate=validate.Regexp(r"^[a-z0-9_-]+\.[a-z_]+$")), required=True)
    sources = fields.List(fields.Str(), load_default=None)


ADMIN_SCOPES = ("read", "replay", "admin")


class AdminTokenSchema(Schema):
    """One admin-API token. An empty `token` (`"${NEXT_TOKEN:-}"`) is a slot not in use: the way
    to keep a rotation's second token in the file before its variable is set."""

    class Meta:
        unknown = RAISE

    name = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$"))
    scope = fields.Str(required=True, validate=validate.OneOf(ADMIN_SCOPES))
    token = fields.Str(required=True, validate=validate.Length(max=512))

    @validates_schema
    def _token_is_long_enough(self, data: dict[str, Any], **kwargs: Any) -> None:
        if 0 < len(data.get("token", "")) < 16:
            raise ValidationError(
                "A token is at least 16 characters (or empty: not in use).", "token"
            )


class AdminSchema(Schema):
    class Meta:
        unknown = RAISE

    tokens = fields.List(fields.Nested(AdminTokenSchema), load_default=list)
    # per token, shared by every receiver process
    rate_limit = Rate(load_default=20.0)
    burst = fields.Int(load_default=60, validate=validate.Range(1, 100_000))

    @validates_schema
    def _names_are_unique(self, data: dict[str, Any], **kwargs: Any) -> None:
        names = [token["name"] for token in data.get("tokens", [])]
        if len(names) != len(set(names)):
            raise ValidationError("Each admin token needs its own name.", "tokens")


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    service = fields.Nested(ServiceSchema, load_default=lambda: ServiceSchema().load({}))
    lanes = fields.Dict(
        keys=fields.Str(validate=validate.OneOf(LANES)),
        values=fields.Nested(LaneSchema),
        load_default=dict,
    )
    sources = fields.Dict(
        keys=fields.Str(validate=validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,62}$")),
        values=fields.Nested(SourceSchema),
        load_default=dict,
    )
    destinations = fields.Dict(
        keys=fields.Str(validate=validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,62}$")),
        values=fields.Nested(DestinationSchema),
        load_default=dict,
    )
    products = fields.Dict(
        keys=fields.Str(), values=fields.Nested(ProductSchema), load_default=dict
    )
    flows = fields.List(fields.Nested(FlowSchema), load_default=list)
    admin = fields.Nested(AdminSchema, load_default=lambda: AdminSchema().load({}))
