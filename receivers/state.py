"""What one receiver process holds, built by the app factory; connections open lazily after fork."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import redis
from celery import Celery
from flask import current_app
from sqlalchemy import Engine

from pipeline import keys
from pipeline.config.model import Config
from pipeline.flow import publish
from pipeline.log.db import create_db_engine
from pipeline.log.ingest import EventWriter
from pipeline.metrics.collectors import ScrapeCollector, Sources
from pipeline.runtime import Clock, Runtime, create_redis
from pipeline.settings import Settings


@dataclass
class ReceiverState:
    settings: Settings
    config: Config
    celery: Celery
    writer: EventWriter
    clock: Clock = time.time
    # readiness gives the periodic jobs this long to report after a (re)start
    started_at: float = field(default_factory=time.time)
    _redis: redis.Redis | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)
    _publisher: publish.Publisher | None = field(default=None, repr=False)
    _runtime: Runtime | None = field(default=None, repr=False)
    _scrape: ScrapeCollector | None = field(default=None, repr=False)

    def publish_verify(self, event_id: int, lane: str) -> bool:
        """After commit: queue verify. No publish retries in the request: the event is durable
        and the sweeper catches up whatever fails here (the chaos suite makes it fail on purpose)."""
        skip_rate = self.settings.chaos_publish_failure_rate
        if skip_rate and random.random() < skip_rate:
            return False
        return self.publisher.publish(keys.VERIFY, [event_id], lane)

    @property
    def publisher(self) -> publish.Publisher:
        if self._publisher is None:
            self._publisher = publish.publisher_for(
                self.settings.effective_broker_url, self.celery, retry=False
            )
        return self._publisher

    @property
    def runtime(self) -> Runtime:
        """What the admin API's replays and destination levers run with (built on first use)."""
        if self._runtime is None:
            self._runtime = Runtime.build(self.settings, self.celery, config=self.config)
        return self._runtime

    @property
    def scrape_collector(self) -> ScrapeCollector:
        """The scrape-time gauges, read through this process's connections."""
        if self._scrape is None:
            self._scrape = ScrapeCollector(
                Sources(
                    config=self.config,
                    celery=self.celery,
                    redis=lambda: self.redis,
                    engine=lambda: self.engine,
                    clock=self.clock,
                )
            )
        return self._scrape

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = create_redis(self.settings)
        return self._redis

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_db_engine(self.settings, pool_size=1)
        return self._engine


def receiver_state() -> ReceiverState:
    state: ReceiverState = current_app.extensions["stackwire"]
    return state
