"""What a worker or the receiver process holds: settings, config and the clients built from them.

Built once per process (after fork) by `Runtime.build`; tasks and views receive it, so nothing
reaches for globals and tests pass their own clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import redis
import requests
from celery import Celery
from sqlalchemy import Engine

from pipeline.config.load import load_config
from pipeline.config.model import Config
from pipeline.delivery.http import build_session
from pipeline.flow.publish import Publisher, publisher_for
from pipeline.log.db import create_db_engine
from pipeline.settings import Settings

Clock = Callable[[], float]


@dataclass
class Runtime:
    settings: Settings
    config: Config
    engine: Engine
    redis: redis.Redis
    celery: Celery
    http: requests.Session
    publisher: Publisher
    clock: Clock = field(default=time.time)

    @classmethod
    def build(cls, settings: Settings, celery: Celery, *, config: Config | None = None) -> Runtime:
        return cls(
            settings=settings,
            config=config or load_config(settings.config_path, settings.env),
            engine=create_db_engine(settings),
            redis=create_redis(settings),
            celery=celery,
            http=build_session(settings),
            publisher=publisher_for(settings.effective_broker_url, celery),
        )

    @cached_property
    def autocommit(self) -> Engine:
        """The same pool, each statement its own transaction: reads and single-statement writes
        skip the BEGIN/COMMIT round trips a transaction costs."""
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()
        self.http.close()


def create_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.require_redis_url(),
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=10,
    )
