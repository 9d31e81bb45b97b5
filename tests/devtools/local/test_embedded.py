"""Embedded servers: a port another program holds is named before anything starts, and a server
dies with the process that started it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devtools.local.embedded import EmbeddedRedis, PortTaken, port_is_free
from devtools.local.up import embedded_port, taken_ports
from pipeline.settings import Settings
from tests.support.processes import wait_until_gone
from tests.support.servers import free_port


@pytest.fixture
def held_port(redis_url: str) -> Iterator[int]:
    """A port held the way a busy machine holds one: as the local end of an outgoing connection
    (to the test Redis), not by a listener."""
    host, port = redis_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    outgoing = socket.socket()
    outgoing.bind(("127.0.0.1", 0))
    outgoing.connect((host, int(port)))
    yield outgoing.getsockname()[1]
    outgoing.close()


def test_a_port_held_by_an_outgoing_connection_is_not_free(held_port: int) -> None:
    assert not port_is_free(held_port)


def test_an_embedded_server_never_starts_on_a_taken_port(tmp_path: Path, held_port: int) -> None:
    server = EmbeddedRedis(tmp_path / "redis", held_port)
    with pytest.raises(PortTaken, match=f"port {held_port} for the embedded Redis is in use"):
        server.start(tmp_path / "redis.log")
    assert server.process is None


def test_stackwire_up_moves_an_embedded_server_to_the_next_free_port(
    held_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = embedded_port(held_port, "Redis", "STACKWIRE_REDIS_PORT")
    assert chosen > held_port
    assert port_is_free(chosen)
    said = capsys.readouterr().out
    assert f"port {held_port} (STACKWIRE_REDIS_PORT) is in use by another program" in said
    assert f"Redis uses {chosen}" in said


def test_stackwire_up_names_a_taken_port_of_its_own_children(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        settings = Settings.from_env(
            {"STACKWIRE_DATA_DIR": str(tmp_path), "STACKWIRE_PORT": str(port)}
        )
        assert taken_ports(settings, sandbox=False) == [
            f"port {port} (the receiver) is in use by another program: stop it or set "
            "STACKWIRE_PORT"
        ]


def test_an_embedded_server_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    # Given a process that started an embedded Redis
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from devtools.local.embedded import EmbeddedRedis; "
            f"s = EmbeddedRedis(Path({str(tmp_path)!r}) / 'redis', {free_port()}); "
            f"s.start(Path({str(tmp_path)!r}) / 'redis.log'); "
            "print(s.process.pid, flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    with starter.stdout:
        server = psutil.Process(int(starter.stdout.readline()))
    # When that process is killed outright
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    # Then Redis goes too
    try:
        wait_until_gone([server])
    finally:
        if server.is_running():
            server.kill()
