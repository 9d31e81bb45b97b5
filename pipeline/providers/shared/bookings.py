"""Booking sources (Calendly, Acuity), and booking times written once: UTC plus the attendee's zone.

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

from pipeline.errors import ContractError
from pipeline.providers.base import SourceProvider
from pipeline.providers.shared.instants import Refusals, iso_utc, parse_instant


class BookingSource(SourceProvider):
    """A scheduling tool's webhooks: every booking change is about one attendee."""

    lane = "enrollments"
    # the documented objects are partial and the tools add fields (schemas/contracts/<tool>.py):
    # drift is recorded, not fatal
    default_on_unknown_fields = "warn"


def booking_instant(value: Any, field: str) -> datetime:
    """A booking's time as the booking sources send it: with its offset, a naive one refused."""
    return parse_instant(value, Refusals.of_field("booking", field), naive_zone=None)


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
