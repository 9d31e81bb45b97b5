"""docker-compose.yml describes the whole production topology (validated by docker-compose itself)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NEEDED = {
    "postgres",
    "redis",
    "migrate",
    "receiver",
    "worker-payments",
    "worker-enrollments",
    "worker-analytics",
    "beat",
    "flower",
}


@pytest.fixture(scope="module")
def compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("STACKWIRE_CI"):
            pytest.fail("docker-compose is not installed; .ci/run installs Debian's package")
        pytest.skip("docker-compose is not installed here (CI installs it)")
    return found


def run(compose: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_the_compose_file_is_valid(compose: str) -> None:
    result = run(compose, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_every_service_the_system_needs_is_there(compose: str) -> None:
    services = set(run(compose, "config", "--services").stdout.split())
    assert services >= NEEDED, f"missing: {sorted(NEEDED - services)}"


def test_the_app_starts_only_on_healthy_servers_and_migrated_schema(compose: str) -> None:
    services = yaml.safe_load(run(compose, "config").stdout)["services"]
    for name in NEEDED - {"postgres", "redis", "migrate"}:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    for name in ("postgres", "redis", "receiver", "worker-payments"):
        assert services[name]["healthcheck"]["test"], name


def test_each_lane_is_its_own_service_so_it_scales_alone(compose: str) -> None:
    services = yaml.safe_load(run(compose, "config").stdout)["services"]
    for lane in ("payments", "enrollments", "analytics"):
        assert services[f"worker-{lane}"]["command"] == ["stackwire", "worker", "--lane", lane]


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, host port) of each port the service publishes; '' is every address."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append((port.get("host_ip", ""), int(port["published"])))
        else:  # "[host_ip:]published:target"
            *host, published_port, _target = str(port).split(":")
            found.append((host[0] if host else "", int(published_port)))
    return found


def test_flower_is_published_on_loopback_only(compose: str) -> None:
    services = yaml.safe_load(run(compose, "config").stdout)["services"]
    # Flower takes no login unless FLOWER_BASIC_AUTH is set, and can revoke tasks
    assert published(services["flower"]) == [("127.0.0.1", 5555)]


def test_only_the_receiver_is_published_beyond_this_host(compose: str) -> None:
    services = yaml.safe_load(run(compose, "config").stdout)["services"]
    public = {
        name
        for name, service in services.items()
        for host, _port in published(service)
        if host not in ("127.0.0.1", "::1")
    }
    assert public == {"receiver"}
