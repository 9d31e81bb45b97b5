"""The webhook sink verifies Standard Webhooks signatures for real and shows duplicates by id."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from standardwebhooks import Webhook

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import SandboxState
from tests.support.web import json_of

SECRET = "whsec_" + base64.b64encode(b"sink-secret-32-bytes-long-enough").decode()
BODY = '{"type":"purchase.completed","key":"sw:1"}'


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=1)


@pytest.fixture
def client(state: SandboxState) -> FlaskClient:
    test_client = create_sandbox_app(state).test_client()
    test_client.put("/_sandbox/webhook_sink/hooks/orders", json={"secret": SECRET})
    return test_client


def signed(
    msg_id: str = "msg_1", *, secret: str = SECRET, at: float | None = None
) -> dict[str, str]:
    """Headers made by the reference library, as any Standard Webhooks sender would send them."""
    stamp = datetime.fromtimestamp(at or time.time(), tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, stamp, BODY),
        "Content-Type": "application/json",
    }


def post(
    client: FlaskClient, headers: dict[str, str], name: str = "orders"
) -> tuple[int, dict[str, Any]]:
    response = client.post(f"/webhook_sink/hooks/{name}", data=BODY, headers=headers)
    return response.status_code, json_of(response)


def test_a_signed_delivery_is_recorded(client: FlaskClient) -> None:
    assert post(client, signed()) == (200, {"received": True, "duplicate": False})
    [delivery] = json_of(client.get("/_sandbox/webhook_sink/hooks/orders"))["deliveries"]
    assert delivery["webhook_id"] == "msg_1"
    assert delivery["json"] == {"type": "purchase.completed", "key": "sw:1"}


def test_the_same_webhook_id_twice_is_a_duplicate(client: FlaskClient, state: SandboxState) -> None:
    post(client, signed())
    assert post(client, signed(at=time.time() + 1)) == (200, {"received": True, "duplicate": True})
    assert state.summary()["providers"]["webhook_sink"] == {
        "effects": {"delivery.received": 1},
        "duplicates": {"delivery.received": 1},
    }


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        (signed(secret="whsec_" + base64.b64encode(b"w" * 32).decode()), "no matching signature"),
        (signed(at=time.time() - 600), "too old or too new"),
        (signed(at=time.time() + 600), "too old or too new"),
        ({"Content-Type": "application/json"}, "missing webhook-id"),
    ],
)
def test_a_bad_signature_is_refused_and_not_recorded(
    client: FlaskClient, state: SandboxState, headers: dict[str, str], problem: str
) -> None:
    status, body = post(client, headers)
    assert status == 401
    assert problem in body["error"]
    assert "webhook_sink" not in state.summary()["providers"]


def test_a_tampered_body_is_refused(client: FlaskClient) -> None:
    response = client.post("/webhook_sink/hooks/orders", data=BODY + " ", headers=signed())
    assert response.status_code == 401


def test_an_unsigned_hook_takes_anything_and_an_unknown_one_nothing(client: FlaskClient) -> None:
    client.put("/_sandbox/webhook_sink/hooks/open", json={"secret": None})
    assert post(client, {"Content-Type": "application/json"}, "open")[0] == 200
    assert post(client, signed(), "missing")[0] == 404


def test_a_secret_that_is_not_whsec_base64_is_refused_by_the_control_api(
    client: FlaskClient,
) -> None:
    response = client.put("/_sandbox/webhook_sink/hooks/bad", json={"secret": "whsec_a"})
    assert response.status_code == 400
