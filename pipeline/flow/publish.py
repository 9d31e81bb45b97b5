"""Publishing tasks by name, so `pipeline` never imports `tasks`.

Everything here is called after the database transaction that made the work commits
(enqueue after commit); a publish that fails is caught up by the sweeper.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Protocol

import redis
from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from pipeline import keys
from pipeline.config.model import Config

if TYPE_CHECKING:  # the Runtime holds a Publisher
    from pipeline.runtime import Runtime

log = logging.getLogger(__name__)


def publish(
    celery: Celery,
    task: str,
    args: list[object],
    lane: str,
    *,
    countdown: float | None = None,
    priority: int = 0,
    retry: bool = True,
) -> bool:
    """Sends one task to a lane; False (logged) when the broker cannot take it right now."""
    try:
        celery.send_task(
            task,
            args=args,
            queue=lane,
            routing_key=lane,
            countdown=countdown if countdown and countdown > 0 else None,
            priority=priority,
            retry=retry,
            retry_policy={"max_retries": 2, "interval_start": 0.05, "interval_step": 0.2},
        )
    except (OperationalError, OSError) as exc:
        log.warning(
            "publish failed; the sweeper will publish it",
            extra={"task": task, "lane": lane, "error": type(exc).__name__},
        )
        return False
    return True


def publish_many(
    publisher: Publisher, task: str, items: Iterable[tuple[int, str]], *, priority: int = 0
) -> int:
    """Publishes `task(id)` for each (id, lane); returns how many the broker took."""
    sent = 0
    for item_id, lane in items:
        sent += publisher.publish(task, [item_id], lane, priority=priority)
    return sent


class Publisher(Protocol):
    def publish(
        self,
        task: str,
        args: list[object],
        lane: str,
        *,
        countdown: float | None = None,
        priority: int = 0,
    ) -> bool: ...


@dataclass
class CeleryPublisher:
    """Through kombu: any broker Celery supports (RabbitMQ included)."""

    celery: Celery
    retry: bool = True

    def publish(
        self,
        task: str,
        args: list[object],
        lane: str,
        *,
        countdown: float | None = None,
        priority: int = 0,
    ) -> bool:
        return publish(
            self.celery, task, args, lane, countdown=countdown, priority=priority, retry=self.retry
        )


def publisher_for(broker_url: str, celery: Celery, *, retry: bool = True) -> Publisher:
    """One LPUSH per task when the broker is Redis; kombu's full path for any other broker."""
    if broker_url.startswith(("redis://", "rediss://")):
        client = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
        return DirectPublisher(client)
    return CeleryPublisher(celery, retry=retry)


class DirectPublisher:
    """One LPUSH per task on a persistent Redis connection, for the receiver's hot path.

    It writes exactly the message kombu's Redis transport writes for `send_task` (Celery message
    protocol 2: headers with the task name and id, a base64 JSON body `[args, kwargs, embed]`,
    properties with the delivery info), without kombu building a client and declaring the queue
    on every call, which is most of a publish's cost. `tests/unit/pipeline/flow/test_publish.py`
    checks it against what Celery itself writes; every integration test has real workers run
    what it publishes. Only for a Redis broker: with RabbitMQ the receiver uses `publish`.
    """

    EMBED: ClassVar[dict[str, None]] = {
        "callbacks": None,
        "errbacks": None,
        "chain": None,
        "chord": None,
    }

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.origin = f"gen{os.getpid()}@{socket.gethostname()}"

    def message(
        self,
        task: str,
        args: list[object],
        lane: str,
        *,
        countdown: float | None = None,
        priority: int = 0,
    ) -> bytes:
        task_id = str(uuid.uuid4())
        # a countdown travels as an aware ISO 8601 `eta`, as Celery writes it
        eta = (
            (datetime.now(UTC) + timedelta(seconds=countdown)).isoformat()
            if countdown and countdown > 0
            else None
        )
        body = json.dumps([args, {}, self.EMBED]).encode()
        headers: dict[str, object] = {
            "lang": "py",
            "task": task,
            "id": task_id,
            "shadow": None,
            "eta": eta,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": json.dumps(args),
            "kwargsrepr": "{}",
            "origin": self.origin,
            "ignore_result": None,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        }
        envelope = {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                "correlation_id": task_id,
                "reply_to": str(uuid.uuid4()),
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": lane},
                "priority": priority,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        return json.dumps(envelope).encode()

    def publish(
        self,
        task: str,
        args: list[object],
        lane: str,
        *,
        countdown: float | None = None,
        priority: int = 0,
    ) -> bool:
        try:
            message = self.message(task, args, lane, countdown=countdown, priority=priority)
            self.client.lpush(keys.priority_list(lane, priority), message)
        except RedisError as exc:
            log.warning(
                "publish failed; the sweeper will publish it",
                extra={"task": task, "lane": lane, "error": type(exc).__name__},
            )
            return False
        return True


LINGER_SECONDS = 0.5  # a flush waits this long to gather what arrives meanwhile into one request


Planned = tuple[int, str, str]  # (delivery id, lane, destination)


def is_batched(config: Config, destination: str) -> bool:
    configured = config.destinations.get(destination)
    return configured is not None and configured.provider.batch_size > 1


def request_flush(
    rt: Runtime, destination: str, lane: str, *, countdown: float | None = None
) -> None:
    """Queues a flush unless one is already waiting; a countdown (a retry) always queues its own.

    The flush task clears the marker before it claims anything, so work planned while a flush
    is queued is either claimed by it or queues a flush of its own: nothing is left behind.
    """
    if countdown is None:
        if not rt.redis.set(keys.flush_marker(destination), "1", nx=True, ex=60):
            return
        countdown = LINGER_SECONDS
    rt.publisher.publish(keys.FLUSH, [destination], lane, countdown=countdown)


def publish_deliveries(rt: Runtime, planned: Iterable[Planned]) -> None:
    for delivery_id, lane, destination in planned:
        if is_batched(rt.config, destination):
            request_flush(rt, destination, lane)
        else:
            rt.publisher.publish(keys.DELIVER, [delivery_id], lane)


def publish_delivery(
    rt: Runtime, delivery_id: int, lane: str, destination: str, *, countdown: float | None = None
) -> None:
    """One delivery again, after a wait (retry, rate limit): its own task or its destination's flush."""
    if is_batched(rt.config, destination):
        request_flush(rt, destination, lane, countdown=countdown or 0)
    else:
        rt.publisher.publish(keys.DELIVER, [delivery_id], lane, countdown=countdown)
