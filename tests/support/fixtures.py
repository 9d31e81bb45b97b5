"""Where recorded provider payloads live: `tests/fixtures/<provider>/…`."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
