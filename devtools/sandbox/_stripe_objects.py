"""The sandbox Stripe's store: objects built from Stripe's published fixtures, and the events it
emits about them. Shared by the API and checkout (`stripe.py`) and billing (`_stripe_billing.py`).

Objects come from Stripe's own published fixtures (stripe/openapi `fixtures3.json`, MIT, copied to
`data/stripe_objects.json`) with realistic values filled in, so every object carries every field a
real one does.
"""

from __future__ import annotations

import copy
import json
import time
from functools import cache
from importlib import resources
from typing import Any

from devtools.sandbox.app import sandbox_state
from devtools.sandbox.state import SandboxState

API_VERSION = "2024-06-20"


@cache
def fixtures() -> dict[str, Any]:
    text = resources.files("devtools.sandbox").joinpath("data/stripe_objects.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def template(kind: str, **overrides: Any) -> dict[str, Any]:
    obj = copy.deepcopy(fixtures()[kind])
    obj.update(overrides)
    return obj


def state() -> SandboxState:
    return sandbox_state()


def objects() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = state().store("stripe", "objects")
    return found


def save(obj: dict[str, Any]) -> dict[str, Any]:
    objects()[obj["id"]] = obj
    return obj


def emit(
    event_type: str,
    obj: dict[str, Any],
    previous: dict[str, Any] | None = None,
    *,
    created: int | None = None,
) -> dict[str, Any]:
    """An event about `obj` as it is now. `created` is the time Stripe stamps on it: now, unless
    a test freezes the clock (as a Stripe test clock does)."""
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if previous:
        data["previous_attributes"] = previous
    event = template(
        "event",
        id=state().new_id("evt"),
        api_version=API_VERSION,
        created=int(time.time()) if created is None else created,
        data=data,
        livemode=False,
        pending_webhooks=1,
        type=event_type,
        request={"id": state().new_id("req"), "idempotency_key": None},
    )
    state().store("stripe", "events")[event["id"]] = event
    return event
