"""The admin API's bearer tokens: who is asking, with which scope, and how fast.

Scopes are ordered: `read` sees, `replay` also plans and runs replays, `admin` also pauses
destinations and reads raw bodies. A presented token is compared with every configured one in
constant time (`hmac.compare_digest`, and no early exit), so timing tells nothing about which
prefix matched. Each token has its own bucket in Redis, shared by every receiver process.
"""

from __future__ import annotations

import hmac
import math
from dataclasses import dataclass

import redis

from pipeline import keys
from pipeline.config.model import AdminConfig, AdminToken
from pipeline.delivery.gates.ratelimit import BUCKET_SCRIPT
from pipeline.settings import Settings

SCOPES = ("read", "replay", "admin")
ENV_TOKEN_NAME = "admin"  # noqa: S105 - a name, not a secret: the name audit rows give STACKWIRE_ADMIN_TOKEN


@dataclass(frozen=True)
class Principal:
    name: str
    scope: str

    def allows(self, required: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(required)


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def configured_tokens(settings: Settings, admin: AdminConfig) -> tuple[AdminToken, ...]:
    tokens = list(admin.tokens)
    if settings.admin_token:
        tokens.append(AdminToken(ENV_TOKEN_NAME, "admin", settings.admin_token))
    return tuple(tokens)


def authenticate(tokens: tuple[AdminToken, ...], authorization: str | None) -> Principal:
    if not tokens:
        raise AuthError(
            403,
            "admin_api_disabled",
            "The admin API is off: set STACKWIRE_ADMIN_TOKEN or [[admin.tokens]] to turn it on.",
        )
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise AuthError(401, "missing_token", "Send the admin token as 'Authorization: Bearer …'.")
    offered = presented.strip().encode()
    found: AdminToken | None = None
    for token in tokens:
        if hmac.compare_digest(offered, token.token.encode()) and found is None:
            found = token
    if found is None:
        raise AuthError(401, "invalid_token", "That admin token is not valid.")
    return Principal(found.name, found.scope)


def require_scope(principal: Principal, required: str) -> None:
    if not principal.allows(required):
        raise AuthError(
            403,
            "insufficient_scope",
            f"This needs the {required!r} scope; the token {principal.name!r} has {principal.scope!r}.",
        )


def admit(client: redis.Redis, principal: Principal, admin: AdminConfig) -> None:
    """One token of the principal's bucket, or 429 with Retry-After."""
    wait = float(
        client.eval(
            BUCKET_SCRIPT,
            2,
            keys.admin_bucket(principal.name),
            keys.admin_pause(principal.name),
            admin.rate_limit,
            float(admin.burst),
        )
    )
    if wait > 0:
        raise AuthError(
            429,
            "rate_limited",
            "Too many admin requests with this token; retry later.",
            retry_after=max(1, math.ceil(wait)),
        )
