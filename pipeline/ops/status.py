"""The status report with what only the log knows: how long the oldest due work has waited.

A broker's queue length says how much is waiting, not for how long; the oldest event still
open and the oldest delivery due (per lane) say whether a lane is keeping up.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.settings import Settings
from pipeline.status import collect

OLDEST_DUE = text(
    """
    SELECT lane, extract(epoch FROM now() - min(since)) AS age FROM (
        SELECT lane, updated_at AS since FROM events WHERE status IN ('received', 'verified')
        UNION ALL
        SELECT lane, coalesce(next_attempt_at, updated_at) FROM deliveries
        WHERE status IN ('pending', 'retrying')
          AND (next_attempt_at IS NULL OR next_attempt_at <= now())
    ) due GROUP BY lane
    """
)


def oldest_due(engine: Engine) -> dict[str, float] | None:
    try:
        with engine.connect() as connection:
            return {row.lane: round(float(row.age), 1) for row in connection.execute(OLDEST_DUE)}
    except SQLAlchemyError:
        return None


def status_document(
    settings: Settings, celery: Celery, engine: Engine, *, now: float, receiver: bool = True
) -> dict[str, Any]:
    report = collect(settings, celery, now=now, receiver=receiver)
    document = report.as_dict()
    ages = oldest_due(engine)
    for lane in document["lanes"]:
        lane["oldest_age_seconds"] = None if ages is None else ages.get(lane["name"], 0.0)
    document.pop("run", None)
    return document
