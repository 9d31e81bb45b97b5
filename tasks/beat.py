"""Celery Beat's scheduler, recording that Beat ran each time it sends a task.

Celery's own persistent scheduler does the scheduling; the record (`pipeline.flow.liveness`) is
how `/readyz` and `stackwire status` tell a Beat that stopped from one that runs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery.beat import PersistentScheduler
from redis.exceptions import RedisError

from pipeline import keys
from pipeline.flow.liveness import record_run
from pipeline.runtime import create_redis

log = logging.getLogger(__name__)


class RecordingScheduler(PersistentScheduler):
    _client: redis.Redis | None = None

    def apply_async(
        self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        sent = super().apply_async(entry, producer, advance, **kwargs)
        self._record()
        return sent

    def _record(self) -> None:
        try:
            if self._client is None:
                self._client = create_redis(self.app.stackwire_settings)
            record_run(self._client, keys.BEAT_JOB, time.time())
        except RedisError:
            # the task went out; the broker is where it matters, the record can wait a tick
            log.warning("could not record Beat's run in Redis")
