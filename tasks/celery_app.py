"""The Celery application, built by a factory from settings.

Every reliability setting is explained on its line. Lanes are queues: `payments`, `enrollments`,
`analytics`; a worker consumes one lane, so a flood in one never delays another.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from pipeline import keys
from pipeline.keys import LANES, MAINTENANCE
from pipeline.settings import Settings

# Longest wait a task may be published with; longer waits are parked in the database.
MAX_COUNTDOWN_SECONDS = 300
VISIBILITY_TIMEOUT_SECONDS = 3600
TASK_MODULES = ("tasks.events", "tasks.deliveries", "tasks.maintenance")


def create_celery(settings: Settings, *, task_events: bool = True) -> Celery:
    # the process's current app: `@shared_task` in tasks/ binds to it
    app = Celery("stackwire", set_as_current=True)
    app.conf.update(celery_conf(settings, task_events=task_events))
    app.stackwire_settings = settings
    app.stackwire_runtime = None
    return app


def celery_conf(settings: Settings, *, task_events: bool) -> dict[str, Any]:
    return {
        "broker_url": settings.effective_broker_url,
        "imports": TASK_MODULES,
        # one queue per lane; direct exchanges so a message reaches exactly its lane. Periodic
        # housekeeping has its own queue that every worker also consumes, so a backed-up or dead
        # lane never stops the sweeper that would rescue it
        "task_queues": tuple(
            Queue(name, Exchange(name, "direct"), routing_key=name)
            for name in (*LANES, MAINTENANCE)
        ),
        "task_default_queue": "enrollments",
        "task_create_missing_queues": False,
        # JSON only: no pickle from a broker anyone on the network might write to
        "task_serializer": "json",
        "accept_content": ["json"],
        # the event log is where results live; no result backend traffic
        "task_ignore_result": True,
        "result_backend": None,
        # ack after the task ran, so a worker killed mid-task leaves the message to be redelivered
        "task_acks_late": True,
        # and requeue it when the pool child dies (SIGKILL, OOM) instead of acking it as failed
        "task_reject_on_worker_lost": True,
        # a worker reserves one message at a time: nothing sits stranded in a dead worker's buffer
        "worker_prefetch_multiplier": 1,
        # unacked messages return to the queue after this; longer than any countdown we publish
        "broker_transport_options": {
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
            "health_check_interval": 10,
        },
        # a hung destination cannot hold a worker forever: soft limit raises, hard limit kills
        "task_soft_time_limit": 50,
        "task_time_limit": 60,
        # keep retrying the broker on start-up instead of dying while Redis restarts
        "broker_connection_retry_on_startup": True,
        # a lost broker connection cancels unacked tasks (they will be redelivered) rather than
        # letting them finish and ack on a connection that no longer exists
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Flower shows tasks from these events; the benchmark turns them off to measure the pipeline
        "worker_send_task_events": task_events,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "beat_schedule": beat_schedule(settings),
        # Celery's persistent scheduler, recording each run (tasks/beat.py)
        "beat_scheduler": "tasks.beat:RecordingScheduler",
        "timezone": "UTC",
        "enable_utc": True,
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    every = settings.sweep_seconds
    return {
        # the transactional outbox: publish what was committed but never (or no longer) queued
        "sweep-outbox": {
            "task": keys.SWEEP,
            "schedule": every,
            "options": {"queue": MAINTENANCE, "expires": every * 2},
        },
        # probe destinations whose circuit is open, and release held deliveries when they answer
        "probe-circuits": {
            "task": keys.PROBE_CIRCUITS,
            "schedule": every,
            "options": {"queue": MAINTENANCE, "expires": every * 2},
        },
        # a running replay plan whose chunk message was lost (a task that crashed) goes on
        "resume-replays": {
            "task": keys.RESUME_REPLAYS,
            "schedule": max(every * 6, 30.0),
            "options": {"queue": MAINTENANCE, "expires": 60.0},
        },
    }
