"""Every exception type Stackwire speaks, the edge's included; `pipeline.delivery.policy` decides
what each means for a retry.

Failure classes name who must act, so an operator can tell a creator's mistake from ours:
- `destination_rejected`: the destination answered 4xx to a well-formed request;
- `destination_unavailable`: it kept timing out, refusing, 429-ing or 5xx-ing past the window;
- `source_unavailable`: the provider we fetch from did the same;
- `contract`: a payload broke its schema (schema drift) or lacked what the action needs;
- `configuration`: a key, a product mapping or a credential in the config is wrong;
- `internal`: a bug of ours (an exception nobody classified).
"""

from __future__ import annotations

import psycopg
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError

# our own database, Redis or broker is unreachable: the work is fine, the task itself is retried.
# PostgreSQL's verdicts on the data itself are not among them: `pipeline.log.db` turns those
# into `DataRefusedError` before anyone catches an OperationalError (see `refused_by_database`)
INFRASTRUCTURE_ERRORS = (
    OperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    BrokerError,
)


class FailureClass:
    DESTINATION_REJECTED = "destination_rejected"
    DESTINATION_UNAVAILABLE = "destination_unavailable"
    SOURCE_UNAVAILABLE = "source_unavailable"
    CONTRACT = "contract"
    CONFIGURATION = "configuration"
    INTERNAL = "internal"


class PipelineError(Exception):
    """Base: carries a machine reason and, when an HTTP exchange caused it, its status."""

    failure_class = FailureClass.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        reason: str = "error",
        http_status: int | None = None,
        failure_class: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.http_status = http_status
        if failure_class is not None:
            self.failure_class = failure_class


class RetryableError(PipelineError):
    """Try again later: timeouts, connection errors, 429, 5xx, `Stripe-Should-Retry: true`."""

    failure_class = FailureClass.DESTINATION_UNAVAILABLE

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class PermanentError(PipelineError):
    """Trying again cannot help: dead-letter now."""

    failure_class = FailureClass.DESTINATION_REJECTED


class ContractError(PermanentError):
    failure_class = FailureClass.CONTRACT


class ConfigurationError(PermanentError):
    failure_class = FailureClass.CONFIGURATION


class DataRefusedError(ContractError):
    """PostgreSQL refused a value for good: trying again can never store it."""

    @classmethod
    def of(cls, exc: BaseException) -> DataRefusedError:
        # the condition only: the driver's message and parameters may hold payload data
        original = getattr(exc, "orig", None) or exc
        state = getattr(original, "sqlstate", None) or "client-side"
        return cls(
            f"PostgreSQL refused a value for good: {type(original).__name__} (SQLSTATE {state})",
            reason="database_refused_data",
        )


# SQLSTATE classes that judge the data, not the server's health: 22 data exception (U+0000,
# a number out of range, bad input syntax), 54 program limit exceeded (a key longer than a
# btree entry's ~2.7 kB). psycopg files 54 under OperationalError, like a lost connection.
PERMANENT_SQLSTATE_CLASSES = ("22", "54")


def refused_by_database(exc: BaseException) -> bool:
    """True when PostgreSQL (or psycopg, before sending) refused the data itself."""
    original = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's exception
    if not isinstance(original, psycopg.Error):
        return False
    state = original.sqlstate
    if state is None:  # refused by psycopg itself (U+0000 in a text parameter)
        return isinstance(original, psycopg.DataError)
    return state[:2] in PERMANENT_SQLSTATE_CLASSES


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


class ServersNotFound(RuntimeError):  # noqa: N818 - a condition an operator reads, one sentence
    """Neither the environment nor a running `stackwire up` names PostgreSQL or Redis."""


class BadPayload(Exception):  # noqa: N818 - the receiver's vocabulary: a 400 with this code
    """The body cannot be read as the provider's format; the receiver answers 400."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SignatureError(Exception):
    """The request is not provably from the provider: the receiver answers 401."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DatabaseUnavailable(Exception):  # noqa: N818 - the receiver's vocabulary: answer 503
    """PostgreSQL cannot take the event now; the provider must retry (503 + Retry-After)."""


class UnstorableEvent(Exception):  # noqa: N818 - the receiver's vocabulary: answer 400
    """PostgreSQL refused the event's data for good (SQLSTATE 22/54): a retry cannot help."""


class Throttled(RetryableError):  # noqa: N818 - a condition, not a failure
    """No token for a while (rate limit, or a 429 pause): the action is deferred, not failed."""

    def __init__(self, destination: str, wait: float) -> None:
        super().__init__(
            f"{destination} is rate limited for {wait:.1f} s",
            retry_after=wait,
            reason="rate_limited",
        )


class BadQuery(ValueError):  # noqa: N818 - the admin API's vocabulary: a 400 with this code
    """A search filter or cursor that cannot be used; `message` is one sentence for the operator."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class PlanNotFound(LookupError):  # noqa: N818 - the admin API's vocabulary: a 404
    """No replay plan has that id."""


class PlanRefused(ValueError):  # noqa: N818 - the admin API's vocabulary: a 400 with this code
    """A replay plan that cannot be made as asked (too large, an unknown mode)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message
