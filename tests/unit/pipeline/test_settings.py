"""Settings come from the environment; a running `stackwire up` stands in for what it leaves out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devtools.local.up import update_run_file
from pipeline import runfile
from pipeline.errors import ServersNotFound
from pipeline.runfile import RunRecord
from pipeline.settings import Settings

RUN = RunRecord.for_this_process(
    state="ready",
    config_path="/srv/stackwire/config.toml",
    database_url="postgresql://postgres@127.0.0.1:15432/stackwire",
    redis_url="redis://127.0.0.1:16379/0",
    ports={"receiver": 18000, "sandbox": 18100, "flower": 18555, "postgres": 15432},
)


def test_without_urls_the_servers_of_a_running_stackwire_up_are_used(tmp_path: Path) -> None:
    update_run_file(tmp_path, RUN)
    settings = Settings.from_env({"STACKWIRE_DATA_DIR": str(tmp_path)})
    assert settings.database_url == RUN.database_url
    assert settings.redis_url == RUN.redis_url
    assert settings.config_path == Path("/srv/stackwire/config.toml")
    assert (settings.port, settings.sandbox_port, settings.flower_port) == (18000, 18100, 18555)
    assert settings.run == RUN


def test_what_the_environment_sets_wins_over_the_run_file(tmp_path: Path) -> None:
    update_run_file(tmp_path, RUN.updated(broker_url="amqp://guest@127.0.0.1//"))
    settings = Settings.from_env(
        {
            "STACKWIRE_DATA_DIR": str(tmp_path),
            "REDIS_URL": "redis://elsewhere:6379/3",
            "STACKWIRE_PORT": "9000",
        }
    )
    assert settings.redis_url == "redis://elsewhere:6379/3"
    assert settings.broker_url is None  # the run's broker goes with the run's Redis only
    assert settings.database_url == RUN.database_url  # still unset in the environment
    assert settings.port == 9000


def test_with_both_urls_set_the_run_file_is_not_read(tmp_path: Path) -> None:
    update_run_file(tmp_path, RUN)
    settings = Settings.from_env(
        {
            "STACKWIRE_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgresql://db/x",
            "REDIS_URL": "redis://r/0",
        }
    )
    assert settings.run is None
    assert settings.port == 8000


def test_a_stale_run_file_is_ignored_and_the_missing_server_named(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    update_run_file(tmp_path, RUN.updated(pid=gone.pid, started=None))
    settings = Settings.from_env({"STACKWIRE_DATA_DIR": str(tmp_path)})
    assert (settings.run, settings.database_url, settings.redis_url) == (None, None, None)
    with pytest.raises(ServersNotFound) as raised:
        settings.require_database_url()
    message = str(raised.value)
    assert message.startswith("DATABASE_URL is not set and no `stackwire up` is running here")
    assert str(runfile.path_in(tmp_path)) in message


def test_a_run_still_starting_says_so(tmp_path: Path) -> None:
    update_run_file(tmp_path, RunRecord.for_this_process())
    with pytest.raises(ServersNotFound, match="is still starting its Redis"):
        Settings.from_env({"STACKWIRE_DATA_DIR": str(tmp_path)}).require_redis_url()


def test_the_embedded_servers_default_below_the_ephemeral_port_range(tmp_path: Path) -> None:
    settings = Settings.from_env({"STACKWIRE_DATA_DIR": str(tmp_path)})
    # Linux hands out 32768-60999 to outgoing connections, which could hold a port there
    assert settings.embedded_pg_port < 32768
    assert settings.embedded_redis_port < 32768


@pytest.mark.parametrize(
    ("given", "expected"), [({}, "auto"), ({"STACKWIRE_LOG_FORMAT": "TEXT"}, "text")]
)
def test_the_log_format_is_read_once_here(
    tmp_path: Path, given: dict[str, str], expected: str
) -> None:
    settings = Settings.from_env({"STACKWIRE_DATA_DIR": str(tmp_path), **given})
    assert settings.log_format == expected


def test_a_log_format_we_do_not_know_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="STACKWIRE_LOG_FORMAT must be one of auto, json, text"):
        Settings.from_env({"STACKWIRE_DATA_DIR": str(tmp_path), "STACKWIRE_LOG_FORMAT": "yaml"})


def test_flowers_login_is_read_here_and_kept_out_of_reprs(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"STACKWIRE_DATA_DIR": str(tmp_path), "FLOWER_BASIC_AUTH": "ops:s3cret"}
    )
    assert settings.flower_basic_auth == "ops:s3cret"
    assert "s3cret" not in repr(settings)
