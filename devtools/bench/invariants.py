"""The check every fault-injection scenario ends with: nothing lost, nothing doubled, nothing stuck.

- every webhook the receiver accepted is in the event log;
- every critical action (an enrollment, a subscription) happened exactly once at the sandbox,
  compared with what the log says should have happened;
- nothing is left `received`/`verified`, and no delivery is still open (`delivered`, `dead`
  and `cancelled` are terminal: a grant cancelled because its purchase was refunded first is
  finished, and was never meant to reach the destination).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import Engine, text

OPEN = """
SELECT
  (SELECT count(*) FROM events WHERE status IN ('received', 'verified')) AS open_events,
  (SELECT count(*) FROM deliveries WHERE status NOT IN ('delivered', 'dead', 'cancelled')) AS open_deliveries
"""


@dataclass
class Verdict:
    events: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    dead: int = 0
    drain_seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.stuck == 0


def drain(engine: Engine, *, timeout: float) -> tuple[float, int]:
    """Waits until no event and no delivery is open; returns (seconds, what is still open)."""
    started = time.monotonic()
    left = -1
    while time.monotonic() - started < timeout:
        with engine.connect() as connection:
            row = connection.execute(text(OPEN)).one()
        left = int(row.open_events) + int(row.open_deliveries)
        if left == 0:
            break
        time.sleep(0.5)
    return time.monotonic() - started, left


def check(
    engine: Engine, sandbox_url: str, accepted_ids: set[str], *, timeout: float = 300
) -> Verdict:
    seconds, stuck = drain(engine, timeout=timeout)
    with engine.connect() as connection:
        logged: set[str] = set(connection.execute(text("SELECT external_id FROM events")).scalars())
        expected: dict[str, int] = dict(
            connection.execute(
                text(
                    "SELECT action, count(*) FROM deliveries WHERE action IN "
                    "('courses.enroll', 'email.subscribe') AND status <> 'cancelled' "
                    "GROUP BY action"
                )
            ).all()
        )
        dead = connection.execute(
            text("SELECT count(*) FROM dead_letters WHERE status = 'open'")
        ).scalar()
    summary = requests.get(f"{sandbox_url}/_sandbox/summary", timeout=30).json()["providers"]
    thinkific = summary.get("thinkific", {"effects": {}, "duplicates": {}})
    mailchimp = summary.get("mailchimp", {"effects": {}, "duplicates": {}})
    enrolled = thinkific["effects"].get("enrollment.created", 0)
    subscribed = mailchimp["effects"].get("member.created", 0)
    duplicated = sum(thinkific["duplicates"].values()) + sum(mailchimp["duplicates"].values())
    missing_effects = max(expected.get("courses.enroll", 0) - enrolled, 0)
    missing_effects += max(expected.get("email.subscribe", 0) - subscribed, 0)
    return Verdict(
        events=len(accepted_ids),
        lost=len(accepted_ids - logged) + missing_effects,
        duplicated=duplicated,
        stuck=stuck,
        dead=int(dead or 0),
        drain_seconds=round(seconds, 1),
        details={
            "enrolled": enrolled,
            "subscribed": subscribed,
            "planned": expected,
            "analytics": summary.get("mixpanel", {}).get("effects", {}),
        },
    )
