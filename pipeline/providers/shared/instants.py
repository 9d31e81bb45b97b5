"""Instants, read and written once for every provider: one parser of ISO 8601 timestamps, one writer.

Providers disagree about what a timestamp without an offset means, and that is the parser's one
real choice: refused (a wall-clock time names no instant), or read on the wall clock of a zone (a
zone the source configures, as for Mailchimp's `fired_at`, or UTC where the provider documents
it). How an unreadable timestamp is reported (the error's message and reason) stays each
provider's own, since dead letters and quarantine reports are searched by those reasons.
Instants are stored one way only: ISO 8601 in UTC with a `Z` (`iso_utc`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError

from pipeline.errors import ContractError


class Complaint(NamedTuple):
    """The contract error a provider raises for one kind of unreadable timestamp."""

    message: str
    reason: str

    def error(self) -> ContractError:
        return ContractError(self.message, reason=self.reason)


@dataclass(frozen=True)
class Refusals:
    """What a provider says of a timestamp it cannot read: missing, malformed, without offset."""

    missing: Complaint
    malformed: Complaint
    naive: Complaint

    @classmethod
    def of_field(
        cls, owner: str, field: str, *, malformed: str = "is not an ISO 8601 time"
    ) -> Refusals:
        """`the booking's datetime is missing` (`no_datetime`), `… is not an ISO 8601 time`
        (`bad_datetime`), `… has no UTC offset` (`naive_datetime`)."""
        subject = f"the {owner}'s {field}"
        return cls(
            Complaint(f"{subject} is missing", f"no_{field}"),
            Complaint(f"{subject} {malformed}", f"bad_{field}"),
            Complaint(f"{subject} has no UTC offset", f"naive_{field}"),
        )

    @classmethod
    def of_provider(
        cls, provider: str, *, malformed: str = "is malformed", naive: str = "has no zone"
    ) -> Refusals:
        """`a Kajabi timestamp is malformed` or `… has no zone`, both `bad_timestamp`; a value
        that is not text at all is malformed."""
        subject = f"a {provider} timestamp"
        unreadable = Complaint(f"{subject} {malformed}", "bad_timestamp")
        return cls(unreadable, unreadable, Complaint(f"{subject} {naive}", "bad_timestamp"))


def parse_instant(
    value: Any, refusals: Refusals, *, naive_zone: str | None, trim: bool = False
) -> datetime:
    """An ISO 8601 instant (`…Z`, `…+02:00`, Acuity's `…-0700`).

    A time without an offset is read on the wall clock of `naive_zone` (an IANA name), or refused
    when that is None. `trim` forgives white space around the text, which form fields may carry.
    """
    if not isinstance(value, str):
        raise refusals.missing.error()
    try:
        moment = datetime.fromisoformat(value.strip() if trim else value)
    except ValueError:
        raise refusals.malformed.error() from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        if naive_zone is None:
            raise refusals.naive.error()
        moment = moment.replace(tzinfo=ZoneInfo(naive_zone))
    return moment


def iso_utc(moment: datetime | float | int) -> str:
    """An instant as ISO 8601 in UTC with a Z: the only way instants are stored."""
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    if moment.tzinfo is None:
        raise ValueError("refusing a naive datetime: its time zone is unknown")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def version_ms(moment: datetime) -> int:
    """An instant as the ordering guard's version of a fetched object: milliseconds since 1970."""
    return int(moment.timestamp() * 1000)


def stored_instant(text: str) -> datetime:
    """An instant as `iso_utc` stored it (a canonical event's `occurred_at`), read back."""
    return datetime.fromisoformat(text)


def validate_zone(name: str) -> None:
    """A marshmallow validator for options naming a time zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Not an IANA time zone, like 'UTC' or 'America/New_York'.") from None
