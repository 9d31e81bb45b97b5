"""`stackwire flower`: a login when FLOWER_BASIC_AUTH is set, and quiet while workers start."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.commands import ROOT, STACKWIRE, bare_env
from tests.support.servers import free_port
from tests.support.waiting import wait_until

LOGIN = ("ops", "correct horse")


@pytest.fixture
def flower(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Flower on a Redis no worker consumes: every inspection it sends goes unanswered."""
    port = free_port()
    env = bare_env(
        tmp_path,
        REDIS_URL=redis_url,
        FLOWER_PORT=str(port),
        FLOWER_BASIC_AUTH=":".join(LOGIN),
        STACKWIRE_LOG_FORMAT="json",
    )
    output = tmp_path / "flower.log"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [str(STACKWIRE), "flower"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), bool, timeout=60)
        yield url, output
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
    except requests.RequestException:
        return False
    return True


def test_flower_asks_for_the_login_it_was_given(flower: tuple[str, Path]) -> None:
    url, _ = flower
    assert requests.get(f"{url}/workers", timeout=5).status_code == 401
    assert requests.get(f"{url}/workers", timeout=5, auth=LOGIN).status_code == 200


def test_flower_logs_like_every_other_part_and_no_inspect_warnings(
    flower: tuple[str, Path],
) -> None:
    _url, output = flower
    time.sleep(3)  # Flower inspects the (absent) workers at start, with a 1 s timeout each
    lines = [line for line in output.read_text().splitlines() if line.strip()]
    assert lines
    assert not [line for line in lines if "Inspect method" in line]
    assert {json.loads(line)["component"] for line in lines} == {"flower"}
