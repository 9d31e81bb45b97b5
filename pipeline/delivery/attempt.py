"""Delivering one action: claim it, pass the gates, call the destination, act on the outcome.

Every exception out of the destination is classified by the policy; the outcome is recorded and
acted on here (delivered, retrying after the policy's wait, deferred by the rate limit, held by a
gate, dead-lettered), so the task only returns what this returns. Only our own infrastructure's
errors escape, for the task to retry as a whole (it takes its lease back).
"""

from __future__ import annotations

import time

from pipeline.config.model import DestinationConfig
from pipeline.delivery import ordering
from pipeline.delivery.claim import Claimed, claim, configured_destination, defer
from pipeline.delivery.deadletter import dead_letter_delivery
from pipeline.delivery.gates import guard, ratelimit
from pipeline.delivery.http import call_scope
from pipeline.delivery.policy import UNKNOWN_OUTCOME_MARGIN, classify
from pipeline.delivery.record import record_delivered, settle_failure
from pipeline.errors import INFRASTRUCTURE_ERRORS, ConfigurationError, Throttled
from pipeline.logging import bind_delivery
from pipeline.providers.base import DestinationContext
from pipeline.runtime import Runtime


def attempt(rt: Runtime, delivery_id: int, claimant: str | None = None) -> str:
    """One try of one delivery; returns what happened to it."""
    with rt.autocommit.connect() as connection:
        claimed = claim(connection, delivery_id, claimant)
    if claimed is None:
        return "not_claimable"
    bind_delivery(
        event_id=claimed.event_id,
        trace_id=claimed.trace_id,
        delivery_id=claimed.ref.id,
        action=claimed.ref.action,
        attempt=claimed.ref.attempt,
    )
    try:
        destination = configured_destination(rt, claimed.destination)
    except ConfigurationError as exc:
        dead_letter_delivery(rt, delivery_id, exc)
        return "dead"
    return _held_back(rt, destination, claimed) or _send(rt, destination, claimed)


def _held_back(rt: Runtime, destination: DestinationConfig, claimed: Claimed) -> str | None:
    """Why the delivery does not go now (waiting for its grant, cancelled, held), or None."""
    order = ordering.sequence(rt, destination, claimed)
    if order != ordering.GO:
        return order
    if destination.provider.looks_before_create and claimed.reclaimed_call_started is not None:
        # the dead worker's create may still be running at the destination: look once it is over
        wait = (
            claimed.reclaimed_call_started
            + destination.timeout_seconds
            + UNKNOWN_OUTCOME_MARGIN
            - rt.clock()
        )
        if wait > 0:
            defer(rt, destination, [claimed], wait)
            return "deferred"
    if guard.hold_if_gated(rt, destination, [claimed]):
        return "held"
    return None


def _send(rt: Runtime, destination: DestinationConfig, claimed: Claimed) -> str:
    started = time.time()
    with call_scope(ratelimit.Throttle(rt.redis, destination)) as scope:
        try:
            result = destination.provider.perform(
                context(rt, destination), claimed.ref, claimed.event
            )
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            failure = classify(exc, destination.name)
            if isinstance(failure, Throttled):
                defer(rt, destination, [claimed], failure.retry_after or 1.0)
                return "deferred"
            guard.after_failure(rt, destination, failure)
            return settle_failure(
                rt, destination, [claimed], failure, started=started, exchange=scope.last
            )
    record_delivered(rt, [(claimed, result)], started=started, exchange=scope.last)
    guard.after_success(rt, destination)
    return "delivered"


def context(rt: Runtime, destination: DestinationConfig) -> DestinationContext:
    return DestinationContext(
        destination=destination, config=rt.config, http=rt.http, redis=rt.redis, now=rt.clock()
    )
