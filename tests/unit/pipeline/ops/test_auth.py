"""Admin tokens: no token configured turns the API off, a wrong one is 401, a scope too small
403, and each token has its own rate limit in Redis."""

from __future__ import annotations

import pytest

from pipeline.config.model import AdminConfig, AdminToken
from pipeline.ops.auth import AuthError, admit, authenticate, configured_tokens, require_scope
from pipeline.runtime import Runtime
from pipeline.settings import Settings

READ = AdminToken("dashboard", "read", "read-token-0123456789")
NEXT = AdminToken("rotation", "admin", "next-token-0123456789")


def refused(call: object, *args: object) -> AuthError:
    with pytest.raises(AuthError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def test_without_tokens_every_request_is_refused_as_disabled() -> None:
    error = refused(authenticate, (), "Bearer anything-at-all-123")
    assert (error.status, error.code) == (403, "admin_api_disabled")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_token"),
        ("Basic dXNlcjpwYXNz", "missing_token"),
        ("Bearer ", "missing_token"),
        ("Bearer read-token-012345678", "invalid_token"),  # a prefix of a real one
        ("Bearer read-token-0123456789x", "invalid_token"),
    ],
)
def test_a_missing_or_wrong_token_is_401(header: str | None, code: str) -> None:
    error = refused(authenticate, (READ, NEXT), header)
    assert (error.status, error.code) == (401, code)


def test_both_tokens_of_a_rotation_are_accepted_each_with_its_scope() -> None:
    reader = authenticate((READ, NEXT), "Bearer read-token-0123456789")
    admin = authenticate((READ, NEXT), "bearer next-token-0123456789")
    assert (reader.name, reader.scope) == ("dashboard", "read")
    assert admin.allows("replay") and admin.allows("admin")
    error = refused(require_scope, reader, "replay")
    assert (error.status, error.code) == (403, "insufficient_scope")


def test_the_environment_token_is_an_admin_token_named_admin() -> None:
    settings = Settings(admin_token="env-token-0123456789")
    tokens = configured_tokens(settings, AdminConfig(tokens=(READ,)))
    assert [(t.name, t.scope) for t in tokens] == [("dashboard", "read"), ("admin", "admin")]


def test_each_token_has_its_own_bucket(runtime: Runtime) -> None:
    limits = AdminConfig(rate_limit=0.5, burst=2)
    reader = authenticate((READ, NEXT), "Bearer read-token-0123456789")
    admin = authenticate((READ, NEXT), "Bearer next-token-0123456789")
    admit(runtime.redis, reader, limits)
    admit(runtime.redis, reader, limits)
    error = refused(admit, runtime.redis, reader, limits)
    assert (error.status, error.code) == (429, "rate_limited")
    assert error.retry_after is not None and error.retry_after >= 1
    admit(runtime.redis, admin, limits)  # another token is not slowed down
