"""Publishing tasks by name, so `pipeline` never imports `tasks`.

Everything here is called after the database transaction that made the work commits
(enqueue after commit); a publish that fails is caught up by the sweeper.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import Celery
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)

VERIFY = "stackwire.verify"
FETCH = "stackwire.fetch"
DELIVER = "stackwire.deliver"
FLUSH = "stackwire.flush"


def publish(
    celery: Celery,
    task: str,
    args: list[object],
    lane: str,
    *,
    countdown: float | None = None,
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


def publish_many(celery: Celery, task: str, items: Iterable[tuple[int, str]]) -> int:
    """Publishes `task(id)` for each (id, lane); returns how many the broker took."""
    sent = 0
    for item_id, lane in items:
        sent += publish(celery, task, [item_id], lane)
    return sent
