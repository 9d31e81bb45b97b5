"""What every signature scheme shares: one error type, the result, constant-time comparison.

A scheme checks the raw request bytes against every configured secret (so a secret can rotate),
reports which secret matched (so the old one can be retired when it stops matching), compares
in constant time and looks at no more than `MAX_SIGNATURES` candidate signatures.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pipeline.config.model import SourceConfig
from pipeline.errors import SignatureError

MAX_SIGNATURES = 5


@dataclass(frozen=True)
class Verified:
    secret_index: int | None  # which configured secret matched; None when the scheme has none


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    headers: Mapping[str, str]  # case-insensitive (werkzeug's Headers)
    query: Mapping[str, str]
    now: float


class SignatureScheme(Protocol):
    def verify(self, source: SourceConfig, request: SignedRequest) -> Verified: ...


class AllOf:
    """Schemes a request must pass one after the other (a URL secret in front of a provider's own
    checks); the first that names a secret reports it."""

    def __init__(self, *schemes: SignatureScheme) -> None:
        self.schemes = schemes

    def verify(self, source: SourceConfig, request: SignedRequest) -> Verified:
        indexes = [scheme.verify(source, request).secret_index for scheme in self.schemes]
        return Verified(secret_index=next((i for i in indexes if i is not None), None))


S = TypeVar("S")


def match_secret(
    secrets: Iterable[S], candidates: list[bytes], sign: Callable[[S], bytes]
) -> int | None:
    """Index of the first secret whose signature equals any candidate, in constant time each."""
    for index, secret in enumerate(secrets):
        expected = sign(secret)
        for candidate in candidates[:MAX_SIGNATURES]:
            if hmac.compare_digest(expected, candidate):
                return index
    return None


def check_timestamp(timestamp: str | None, now: float, tolerance: int, header: str) -> int:
    """The signed timestamp, refused when outside the tolerance in either direction."""
    if not timestamp:
        raise SignatureError("missing_timestamp", f"The {header} header carries no timestamp.")
    try:
        value = int(timestamp)
    except ValueError:
        raise SignatureError(
            "malformed_signature", f"The {header} timestamp is not a number."
        ) from None
    if abs(now - value) > tolerance:
        raise SignatureError(
            "stale_timestamp",
            f"The {header} timestamp is outside the {tolerance} s tolerance.",
        )
    return value


def required_header(request: SignedRequest, name: str) -> str:
    value = request.headers.get(name)
    if not value:
        raise SignatureError("missing_signature", f"The {name} header is missing.")
    return value
