"""Grants and revokes of one purchase in the right order, whatever order their events arrive in.

A revoke (a refund's unenroll) waits while the same purchase's grant (its enroll) is still open,
so it cannot run first, find nothing, and let the grant land after it: access after a refund.
A grant about to be sent after a revoke of its purchase was planned is cancelled instead.
Only destinations that declare `revokes` (the course platforms) pay for the check.
"""

from __future__ import annotations

from sqlalchemy import text

from pipeline.config.model import DestinationConfig
from pipeline.delivery.claim import Claimed, defer
from pipeline.runtime import Runtime

GO, WAIT, CANCELLED = "go", "waiting_for_grant", "cancelled"
REVOKE_WAIT_SECONDS = 5.0

OPEN_GRANT = text(
    """
    SELECT 1 FROM deliveries
    WHERE subject = :subject AND action = :grant
      AND status IN ('pending', 'in_flight', 'retrying', 'held')
    LIMIT 1
    """
)
CANCEL_IF_REVOKED = text(
    """
    WITH revoked AS (
        SELECT 1 FROM deliveries WHERE subject = :subject AND action = ANY(:revokes) LIMIT 1
    ), cancelled AS (
        UPDATE deliveries SET status = 'cancelled', lease_until = NULL,
            last_error = 'cancelled: revoked before it was sent', updated_at = now()
        WHERE id = :id AND status = 'in_flight' AND EXISTS (SELECT 1 FROM revoked)
        RETURNING id, event_id
    )
    INSERT INTO event_steps (event_id, step, outcome, detail)
    SELECT event_id, 'cancel', 'cancelled', jsonb_build_object('delivery', id) FROM cancelled
    RETURNING event_id
    """
)


def sequence(rt: Runtime, destination: DestinationConfig, claimed: Claimed) -> str:
    """`go`, or what was done instead: the revoke deferred, or the grant cancelled."""
    revokes = destination.provider.revokes
    if not revokes or claimed.subject is None:
        return GO
    verb = claimed.ref.verb
    if verb in revokes:
        grant = f"{destination.name}.{revokes[verb]}"
        with rt.autocommit.connect() as connection:
            waiting = connection.execute(
                OPEN_GRANT, {"subject": claimed.subject, "grant": grant}
            ).first()
        if waiting is None:
            return GO
        defer(rt, destination, [claimed], REVOKE_WAIT_SECONDS)
        return WAIT
    undoing = [f"{destination.name}.{r}" for r, granted in revokes.items() if granted == verb]
    if not undoing:
        return GO
    with rt.autocommit.connect() as connection:
        cancelled = connection.execute(
            CANCEL_IF_REVOKED,
            {"subject": claimed.subject, "revokes": undoing, "id": claimed.ref.id},
        ).first()
    return GO if cancelled is None else CANCELLED
