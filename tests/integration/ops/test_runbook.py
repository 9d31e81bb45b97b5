"""docs/runbook.md runs: every shell block of it, in order, against a real system where a buyer's
enrollment was refused and dead-lettered; the key is "fixed" (the fault cleared) when the page
says so (its step 6), and at the end she is enrolled once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from devtools.sandbox.state import Fault
from tests.integration.ops.test_operations import dead_enrollments, enrolled
from tests.integration.test_delivery_faults import no_duplicates, purchase
from tests.support.commands import ROOT
from tests.support.db import scalar
from tests.support.stack import Stack
from tests.support.waiting import wait_until

RUNBOOK = ROOT / "docs" / "runbook.md"
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def shell_blocks(markdown: str) -> list[str]:
    return BLOCK.findall(markdown)


def run(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_command_of_the_runbook_runs(live: Stack, tmp_path: Path) -> None:
    live.sandbox_state.faults["thinkific"] = Fault(status=403)
    purchase(live, 1)
    wait_until(lambda: dead_enrollments(live), lambda n: n == 1, timeout=60)
    email = scalar(
        live.runtime.engine,
        "SELECT canonical->'contact'->>'email' FROM events "
        "WHERE canonical_type = 'purchase.completed'",
    )
    text = RUNBOOK.read_text()
    before, after = text.split("## 6.", 1)
    first, second = shell_blocks(before), shell_blocks(after)
    assert len(first) >= 5 and len(second) >= 3
    # the page's own checkout: `.venv/bin` is where this interpreter lives
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {**os.environ, **live.env, "COLUMNS": "160"}
    setup = "\n".join(first).replace("export EMAIL='jane@example.com'", f"export EMAIL='{email}'")
    # the exports of the first half, so the second half starts where it left off
    exports = "\n".join(
        line for line in setup.splitlines() if line.startswith(("export PATH", "export API"))
    )
    exports += "\n" + "\n".join(
        f"export {name}='{value}'"
        for name, value in (("EMAIL", email), ("TOKEN", live.env["STACKWIRE_ADMIN_TOKEN"]))
    )

    looked = run(setup, env, tmp_path)
    assert looked.returncode == 0, looked.stdout[-3000:] + looked.stderr[-3000:]
    assert "HTTP 403" in looked.stdout and email not in looked.stdout
    assert enrolled(live) == 0

    live.sandbox_state.faults.pop("thinkific")  # step 6: the key is fixed
    event = scalar(
        live.runtime.engine, "SELECT id FROM events WHERE canonical_type = 'purchase.completed'"
    )
    repaired = run(f"{exports}\nexport EVENT={event}\n" + "\n".join(second), env, tmp_path)
    assert repaired.returncode == 0, repaired.stdout[-3000:] + repaired.stderr[-3000:]
    wait_until(lambda: enrolled(live), lambda n: n == 1, timeout=60)
    no_duplicates(live)
