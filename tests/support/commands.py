"""Running `stackwire` as an operator does: a real process, with an environment we choose."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACKWIRE = Path(sys.executable).with_name("stackwire")
# what would name the servers: a test that wants none leaves these out
SERVER_VARIABLES = ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "STACKWIRE_CONFIG")


def bare_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any server named, using `data_dir`."""
    env = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES}
    return {**env, "STACKWIRE_DATA_DIR": str(data_dir), **extra}


def stackwire(
    *args: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STACKWIRE), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
