"""Booking times, written once for every booking source: UTC instants plus the attendee's own zone.

A booking keeps the instant in UTC (what a machine compares) and the attendee's IANA zone (what a
person means: "9 am my time" must still be 9 am after a DST change). `local_start` is the instant
seen in that zone, computed with zoneinfo, never by copying an offset a provider happened to send:
Acuity's `datetime` carries the offset of whichever zone it was rendered in, which need not be the
attendee's, and a fixed offset is wrong for every booking on the other side of a DST change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError

from pipeline.errors import ContractError


def zone(name: Any) -> ZoneInfo:
    """The IANA zone a provider named; an unknown or missing one breaks the contract."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ContractError("the booking has no attendee time zone", reason="no_timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ContractError(
            "the booking names a time zone that is not an IANA zone", reason="unknown_timezone"
        ) from None


def parse_instant(value: Any, field: str) -> datetime:
    """An ISO 8601 instant with an offset (`…Z`, `…+02:00`, Acuity's `…-0700`); naive is refused."""
    if not isinstance(value, str):
        raise ContractError(f"the booking's {field} is missing", reason=f"no_{field}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ContractError(
            f"the booking's {field} is not an ISO 8601 time", reason=f"bad_{field}"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        # a wall-clock time without an offset names no instant
        raise ContractError(f"the booking's {field} has no UTC offset", reason=f"naive_{field}")
    return moment


def booking_times(start: datetime, end: datetime | None, timezone: Any) -> dict[str, Any]:
    """`starts_at`/`ends_at` in UTC, the attendee's zone and the start on their wall clock."""
    attendee_zone = zone(timezone)
    return {
        "starts_at": iso_utc(start),
        "ends_at": iso_utc(end) if end is not None else None,
        "timezone": attendee_zone.key,
        # astimezone on an aware datetime picks the right side of a DST fold by itself
        "local_start": start.astimezone(UTC).astimezone(attendee_zone).isoformat(),
    }


def plus_minutes(start: datetime, minutes: Any) -> datetime | None:
    """An end computed from a duration (Acuity sends minutes as a string); None when unknown."""
    try:
        count = int(str(minutes))
    except ValueError:
        return None
    if count < 0 or count > 60 * 24 * 31:
        return None
    # add in UTC: an elapsed duration, not a wall-clock one, across a DST change
    return start.astimezone(UTC) + timedelta(minutes=count)


def iso_utc(moment: datetime | float | int) -> str:
    """An instant as ISO 8601 in UTC with a Z: the only way instants are stored."""
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    if moment.tzinfo is None:
        raise ValueError("refusing a naive datetime: its time zone is unknown")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


WALL_CLOCK_FORMAT = "%Y-%m-%d %H:%M:%S"


def validate_zone(name: str) -> None:
    """A marshmallow validator for options naming a time zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Not an IANA time zone, like 'UTC' or 'America/New_York'.") from None


def wall_clock(value: Any, zone: str, field: str) -> datetime:
    """An instant from a provider timestamp: ISO 8601 with an offset as it is; a naive
    "YYYY-MM-DD HH:MM:SS" (Mailchimp's `fired_at`) read on the wall clock of `zone`."""
    if not isinstance(value, str):
        raise ContractError(f"the payload's {field} is missing", reason=f"no_{field}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ContractError(
            f"the payload's {field} is not a date and time", reason=f"bad_{field}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment
