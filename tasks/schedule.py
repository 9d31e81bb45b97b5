"""Every periodic job in one place (Celery Beat reads this and nothing else)."""

from __future__ import annotations

from typing import Any

SWEEP_SECONDS = 5.0


def beat_schedule() -> dict[str, dict[str, Any]]:
    return {
        # the transactional outbox: publish what was committed but never (or no longer) queued
        "sweep-outbox": {
            "task": "stackwire.sweep",
            "schedule": SWEEP_SECONDS,
            "options": {"queue": "payments", "expires": SWEEP_SECONDS * 2},
        },
        # probe destinations whose circuit is open, and release held deliveries when they answer
        "probe-circuits": {
            "task": "stackwire.probe_circuits",
            "schedule": SWEEP_SECONDS,
            "options": {"queue": "enrollments", "expires": SWEEP_SECONDS * 2},
        },
    }
