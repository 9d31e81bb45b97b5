"""Alerts the pipeline raises itself (drift, id conflicts, dead letters), one open row per subject.

A repeat bumps the open alert's count instead of adding rows, so a storm is one line with a number.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text

from pipeline.storable import strip_nul

log = logging.getLogger(__name__)

RAISE_ALERT = text(
    """
    INSERT INTO alerts (kind, subject, severity, message)
    VALUES (:kind, :subject, :severity, :message)
    ON CONFLICT (kind, subject) WHERE resolved_at IS NULL
    DO UPDATE SET count = alerts.count + 1, last_at = now(), message = EXCLUDED.message
    """
)


def raise_alert(
    connection: Connection, kind: str, subject: str, message: str, *, severity: str = "warning"
) -> None:
    connection.execute(
        RAISE_ALERT,
        {
            "kind": kind,
            "subject": strip_nul(subject),
            "severity": severity,
            "message": strip_nul(message),
        },
    )
    log.warning("alert", extra={"alert": kind, "subject": subject, "severity": severity})
