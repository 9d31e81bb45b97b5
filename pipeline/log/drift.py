"""Schema drift made visible: every vanished or unknown field counted per source and event type."""

from __future__ import annotations

from sqlalchemy import Connection, text

from pipeline.log.alerts import raise_alert
from schemas.contracts.base import ContractReport

RECORD_DRIFT = text(
    """
    INSERT INTO schema_drift (source, provider_type, kind, field, last_event_id)
    VALUES (:source, :provider_type, :kind, :field, :event_id)
    ON CONFLICT (source, provider_type, kind, field) DO UPDATE SET
        count = schema_drift.count + 1, last_seen = now(), last_event_id = EXCLUDED.last_event_id
    """
)


def record_drift(
    connection: Connection, source: str, provider_type: str, event_id: int, report: ContractReport
) -> None:
    rows = [
        {
            "source": source,
            "provider_type": provider_type,
            "kind": kind,
            "field": name,
            "event_id": event_id,
        }
        for kind, names in (
            ("missing", report.missing),
            ("invalid", report.invalid),
            ("unknown", report.unknown),
        )
        for name in names[:50]
    ]
    if not rows:
        return
    connection.execute(RECORD_DRIFT, rows)
    fields = ", ".join(sorted({str(row["field"]) for row in rows})[:5])
    severity = "critical" if report.broken else "warning"
    raise_alert(
        connection,
        "schema_drift",
        f"{source}:{provider_type}",
        f"{source} {provider_type} payloads drifted from the contract ({fields}).",
        severity=severity,
    )
