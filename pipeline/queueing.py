"""Publishing delivery work: one `deliver` task per single action, one lingering `flush` per
batching destination. Called only after the transaction that created the work has committed.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline import dispatch
from pipeline.config import Config
from pipeline.providers.registry import destination_provider
from pipeline.runtime import Runtime

LINGER_SECONDS = 0.5  # a flush waits this long to gather what arrives meanwhile into one request

Planned = tuple[int, str, str]  # (delivery id, lane, destination)


def is_batched(config: Config, destination: str) -> bool:
    configured = config.destinations.get(destination)
    provider = destination_provider(configured.provider) if configured else None
    return provider is not None and provider.batch_size > 1


def flush_key(destination: str) -> str:
    return f"stackwire:flush:{destination}"


def request_flush(
    rt: Runtime, destination: str, lane: str, *, countdown: float | None = None
) -> None:
    """Queues a flush unless one is already waiting; a countdown (a retry) always queues its own.

    The flush task clears the marker before it claims anything, so work planned while a flush
    is queued is either claimed by it or queues a flush of its own: nothing is left behind.
    """
    if countdown is None:
        if not rt.redis.set(flush_key(destination), "1", nx=True, ex=60):
            return
        countdown = LINGER_SECONDS
    rt.publisher.publish(dispatch.FLUSH, [destination], lane, countdown=countdown)


def publish_deliveries(rt: Runtime, planned: Iterable[Planned]) -> None:
    for delivery_id, lane, destination in planned:
        if is_batched(rt.config, destination):
            request_flush(rt, destination, lane)
        else:
            rt.publisher.publish(dispatch.DELIVER, [delivery_id], lane)


def publish_delivery(
    rt: Runtime, delivery_id: int, lane: str, destination: str, *, countdown: float | None = None
) -> None:
    """One delivery again, after a wait (retry, rate limit): its own task or its destination's flush."""
    if is_batched(rt.config, destination):
        request_flush(rt, destination, lane, countdown=countdown or 0)
    else:
        rt.publisher.publish(dispatch.DELIVER, [delivery_id], lane, countdown=countdown)
