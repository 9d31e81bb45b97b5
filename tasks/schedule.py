"""Every periodic job in one place (Celery Beat reads this and nothing else)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.settings import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    every = settings.sweep_seconds
    return {
        # the transactional outbox: publish what was committed but never (or no longer) queued
        "sweep-outbox": {
            "task": "stackwire.sweep",
            "schedule": every,
            "options": {"queue": "maintenance", "expires": every * 2},
        },
        # probe destinations whose circuit is open, and release held deliveries when they answer
        "probe-circuits": {
            "task": "stackwire.probe_circuits",
            "schedule": every,
            "options": {"queue": "maintenance", "expires": every * 2},
        },
    }
