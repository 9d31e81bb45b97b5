"""The runbook's commands, as an operator types them in a second terminal: search, trace, plan,
execute (with and without --yes), audit; real processes, real workers."""

from __future__ import annotations

import json
import os

from devtools.sandbox.state import Fault
from tests.integration.ops.test_operations import dead_enrollments, enrolled
from tests.integration.test_delivery_faults import no_duplicates, purchase
from tests.support.commands import stackwire
from tests.support.db import scalar
from tests.support.stack import Stack
from tests.support.waiting import wait_until


def test_from_a_buyers_email_to_one_enrollment_in_three_commands(live: Stack) -> None:
    env = {**os.environ, **live.env, "COLUMNS": "200"}
    live.sandbox_state.faults["thinkific"] = Fault(status=403)
    purchase(live, 1)
    wait_until(lambda: dead_enrollments(live), lambda n: n == 1, timeout=60)
    email = scalar(
        live.runtime.engine,
        "SELECT canonical->'contact'->>'email' FROM events "
        "WHERE canonical_type = 'purchase.completed'",
    )

    # 1. the symptom, confirmed with ids
    found = stackwire("events", "search", "--email", email, "--since", "1h", "--json", env=env)
    assert found.returncode == 0, found.stderr
    page = json.loads(found.stdout)
    assert len(page["data"]) == 1 and page["next_cursor"] is None
    event_id = page["data"][0]["id"]

    # 2. the trace: the refused attempt, one line each, the address never in clear
    traced = stackwire("trace", email, env=env)
    assert traced.returncode == 0, traced.stderr
    assert "courses.enroll #1: dead HTTP 403" in traced.stdout or "HTTP 403" in traced.stdout
    assert f"event {event_id}" in traced.stdout
    assert email not in traced.stdout

    # 3. the plan, then its execution (a script must say --yes)
    planned = stackwire(
        "replay", "plan", "--email", email, "--destination", "courses", "--json", env=env
    )
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["count"] == 1
    refused = stackwire("replay", "execute", plan["plan_id"], "--reason", "key fixed", env=env)
    assert refused.returncode == 2 and "--yes is required" in refused.stderr
    live.sandbox_state.faults.pop("thinkific")
    executed = stackwire(
        "replay", "execute", plan["plan_id"], "--reason", "key fixed", "--yes", "--json", env=env
    )
    assert executed.returncode == 0, executed.stderr
    assert json.loads(executed.stdout)["by_outcome"] == {"replayed": 1}
    wait_until(lambda: enrolled(live), lambda n: n == 1, timeout=60)

    # the check that it happened once, and the audit of who did it
    again = stackwire("replay", "execute", plan["plan_id"], "--reason", "again", "--yes", env=env)
    assert again.returncode == 0
    assert enrolled(live) == 1
    no_duplicates(live)
    audit = json.loads(stackwire("audit", "--json", env=env).stdout)["data"]
    assert [row["action"] for row in audit][:3] == [
        "replay.execute",
        "replay.execute",
        "replay.plan",
    ]
    assert all(row["actor"].startswith("cli:") for row in audit)
    dlq = json.loads(stackwire("dlq", "ls", "--json", env=env).stdout)
    assert dlq["data"] == []  # replayed: no longer open
