"""Which event a signed body is: its provider id and type, read one way at the receiver and again
when an operator replays a body that could not be read then (with the provider code of the day).

A body whose signature verified is never refused without a trace: when its provider module
fails on it (a bug of ours: `unidentified`) or finds it is not what the provider documents (no
type, an id of the wrong kind, an id too long to index: `unreadable`), it is kept quarantined
under a digest of its bytes, so a redelivery is a duplicate and an operator can replay it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pipeline.config.model import SourceConfig
from pipeline.errors import BadPayload, FailureClass
from pipeline.log.ingest import Quarantine
from pipeline.providers.base import Identified

log = logging.getLogger(__name__)

# ids and types are indexed: a btree entry holds ~2.7 kB, and no provider's id comes near this
MAX_ID_CHARS = 255
MAX_TYPE_CHARS = 255
UNIDENTIFIED = "unidentified"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Refusal:
    """What the receiver answers for an unreadable body (400): a machine code and a sentence."""

    code: str
    message: str


@dataclass(frozen=True)
class Identification:
    identified: Identified
    quarantine: Quarantine | None = None
    refusal: Refusal | None = None


def identify_body(source: SourceConfig, body: bytes, headers: Mapping[str, str]) -> Identification:
    """The event a verified body is, or its quarantine under the body's digest. Never raises."""
    provider = source.provider
    try:
        payload = provider.parse(body)
        identified = provider.identify_for(source, payload, body, headers)
        check_lengths(identified)
    except BadPayload as exc:
        return _unreadable(body, exc)
    except Exception as exc:
        log.error(
            "could not identify a signed event; quarantined",
            extra={"source": source.name, "error": type(exc).__name__},
        )
        return _unidentified(body)
    return Identification(identified)


def check_lengths(identified: Identified) -> None:
    if len(identified.external_id) > MAX_ID_CHARS:
        raise BadPayload("id_too_long", f"The event id is longer than {MAX_ID_CHARS} characters.")
    if len(identified.provider_type) > MAX_TYPE_CHARS:
        raise BadPayload(
            "type_too_long", f"The event type is longer than {MAX_TYPE_CHARS} characters."
        )


def quarantine_id(body: bytes) -> str:
    return f"sha256:{hashlib.sha256(body).hexdigest()}"


def _unidentified(body: bytes) -> Identification:
    return Identification(
        Identified(quarantine_id(body), UNIDENTIFIED),
        Quarantine(
            UNIDENTIFIED,
            FailureClass.INTERNAL,
            "a signed event could not be read by its provider module; kept for replay",
        ),
    )


def _unreadable(body: bytes, exc: BadPayload) -> Identification:
    return Identification(
        Identified(quarantine_id(body), UNREADABLE),
        Quarantine(
            UNREADABLE,
            FailureClass.CONTRACT,
            f"a signed event is not what its provider documents ({exc.code}): {exc.message}",
        ),
        Refusal(exc.code, exc.message),
    )


class StoredHeaders(Mapping[str, str]):
    """The headers kept with an event, looked up case-insensitively, as the receiver's were."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._by_name = {name.lower(): value for name, value in headers.items()}

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)
