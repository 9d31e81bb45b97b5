"""Stripe webhook payloads shaped field for field like Stripe's (tests/fixtures/stripe/*.json)."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from pipeline.signatures.timestamped_hmac import timestamped_hmac_header
from tests.support.fixtures import FIXTURES

STRIPE_FIXTURES = FIXTURES / "stripe"
SECRET = "whsec_test_current"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((STRIPE_FIXTURES / name).read_text())
    return loaded


def checkout_completed(**session_overrides: Any) -> dict[str, Any]:
    event = copy.deepcopy(load("checkout.session.completed.json"))
    event["data"]["object"].update(session_overrides)
    return event


def signed(
    event: dict[str, Any] | bytes, *, secret: str = SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    header = timestamped_hmac_header(secret, body, timestamp or int(time.time()))
    return body, {"Content-Type": "application/json", "Stripe-Signature": header}
