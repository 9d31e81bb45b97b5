"""The webhook edge: what it accepts, what it refuses, and that nothing refused is stored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from pipeline.config.load import load_config
from pipeline.log.db import create_db_engine
from pipeline.settings import Settings
from receivers.app import create_app
from tests.support.db import rows, scalar
from tests.support.stripe_events import checkout_completed, signed
from tests.support.web import json_of

Count = Callable[[], int]  # how many events are stored now


@pytest.fixture
def client(settings: Settings, clean: None) -> Iterator[FlaskClient]:
    app = create_app(
        settings, config=load_config(settings.config_path, settings.env), configure_logs=False
    )
    yield app.test_client()
    app.extensions["stackwire"].writer.close()


@pytest.fixture
def stored(settings: Settings) -> Iterator[Count]:
    engine = create_db_engine(settings)
    yield lambda: scalar(engine, "SELECT count(*) FROM events")
    engine.dispose()


def test_a_signed_event_is_stored_before_the_answer(client: FlaskClient, stored: Count) -> None:
    body, headers = signed(checkout_completed())
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    assert response.status_code == 202
    assert json_of(response)["status"] == "accepted"
    assert stored() == 1


def test_a_redelivery_is_acknowledged_and_not_stored_twice(
    client: FlaskClient, stored: Count
) -> None:
    event = checkout_completed()
    first = client.post("/webhooks/stripe", data=signed(event)[0], headers=signed(event)[1])
    body, headers = signed(event, timestamp=int(time.time()) + 1)  # Stripe re-signs each delivery
    again = client.post("/webhooks/stripe", data=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json == {"status": "duplicate", "event_id": json_of(first)["event_id"]}
    assert stored() == 1


def test_the_same_id_with_another_body_is_a_conflict_not_processed(
    client: FlaskClient, settings: Settings
) -> None:
    event = checkout_completed()
    client.post("/webhooks/stripe", data=signed(event)[0], headers=signed(event)[1])
    tampered = checkout_completed(amount_total=1)
    response = client.post(
        "/webhooks/stripe", data=signed(tampered)[0], headers=signed(tampered)[1]
    )
    assert response.status_code == 200
    assert json_of(response)["status"] == "conflict"
    engine = create_db_engine(settings)
    assert scalar(engine, "SELECT conflicts FROM events") == 1
    assert scalar(engine, "SELECT reason FROM dead_letters") == "id_conflict"
    assert scalar(engine, "SELECT kind FROM alerts") == "event_id_conflict"
    engine.dispose()


def test_the_previous_secret_still_verifies_during_rotation(
    client: FlaskClient, settings: Settings
) -> None:
    body, headers = signed(checkout_completed(), secret="whsec_test_previous")
    assert client.post("/webhooks/stripe", data=body, headers=headers).status_code == 202
    engine = create_db_engine(settings)
    assert scalar(engine, "SELECT secret_index FROM events") == 1
    engine.dispose()


def _refused(
    client: FlaskClient, response: TestResponse, status: int, code: str, stored: Count
) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert json_of(response)["error"]["code"] == code
    assert json_of(response)["error"]["message"].endswith(".")
    assert "Traceback" not in response.get_data(as_text=True)
    assert stored() == 0


def test_a_bad_signature_is_401(client: FlaskClient, stored: Count) -> None:
    body, headers = signed(checkout_completed(), secret="whsec_someone_else")
    _refused(
        client,
        client.post("/webhooks/stripe", data=body, headers=headers),
        401,
        "bad_signature",
        stored,
    )


def test_a_missing_signature_is_401(client: FlaskClient, stored: Count) -> None:
    body, _ = signed(checkout_completed())
    response = client.post(
        "/webhooks/stripe", data=body, headers={"Content-Type": "application/json"}
    )
    _refused(client, response, 401, "missing_signature", stored)


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_timestamp_outside_the_tolerance_either_way_is_401(
    client: FlaskClient, stored: Count, skew: int
) -> None:
    body, headers = signed(checkout_completed(), timestamp=int(time.time()) + skew)
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    _refused(client, response, 401, "stale_timestamp", stored)


def test_an_unknown_source_is_404(client: FlaskClient, stored: Count) -> None:
    body, headers = signed(checkout_completed())
    _refused(
        client,
        client.post("/webhooks/nobody", data=body, headers=headers),
        404,
        "unknown_source",
        stored,
    )


def test_a_body_over_the_limit_is_413(client: FlaskClient, stored: Count) -> None:
    event = checkout_completed(metadata={"padding": "x" * 300_000})
    body, headers = signed(event)
    _refused(
        client,
        client.post("/webhooks/stripe", data=body, headers=headers),
        413,
        "body_too_large",
        stored,
    )


def test_malformed_json_is_400(client: FlaskClient, stored: Count) -> None:
    body, headers = signed(b'{"id": "evt_1", "type": ')
    _refused(
        client,
        client.post("/webhooks/stripe", data=body, headers=headers),
        400,
        "malformed_json",
        stored,
    )


def test_a_nesting_bomb_is_400(client: FlaskClient, stored: Count) -> None:
    body, headers = signed(b'{"id": "evt_1", "type": "x", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    _refused(
        client,
        client.post("/webhooks/stripe", data=body, headers=headers),
        400,
        "nesting_too_deep",
        stored,
    )


def test_a_form_body_to_a_json_source_is_415(client: FlaskClient, stored: Count) -> None:
    body, headers = signed(checkout_completed())
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    _refused(
        client,
        client.post("/webhooks/stripe", data=body, headers=headers),
        415,
        "unsupported_media_type",
        stored,
    )


def test_get_on_a_json_source_is_405(client: FlaskClient, stored: Count) -> None:
    _refused(client, client.get("/webhooks/stripe"), 405, "method_not_allowed", stored)


def test_an_event_without_an_id_is_400(client: FlaskClient, stored: Count) -> None:
    event = checkout_completed()
    del event["id"]
    body, headers = signed(json.dumps(event).encode())
    _refused(
        client,
        client.post("/webhooks/stripe", data=body, headers=headers),
        400,
        "missing_event_id",
        stored,
    )


def test_an_unmapped_event_type_is_stored_and_ignored(
    client: FlaskClient, settings: Settings
) -> None:
    event = checkout_completed()
    event["type"] = "plan.created"
    body, headers = signed(event)
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    assert response.status_code == 200
    engine = create_db_engine(settings)
    assert scalar(engine, "SELECT status || ':' || reason FROM events") == "ignored:unmapped_type"
    engine.dispose()


def test_a_signed_event_our_code_cannot_read_is_kept_quarantined_not_refused(
    client: FlaskClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.providers.stripe.source import StripeSource

    def broken(*_: object) -> None:
        raise KeyError("a bug in a provider module")

    monkeypatch.setattr(StripeSource, "identify", broken)
    body, headers = signed(checkout_completed())
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    assert response.status_code == 202
    assert json_of(response)["status"] == "quarantined"
    engine = create_db_engine(settings)
    assert scalar(engine, "SELECT status FROM events") == "quarantined"
    assert scalar(engine, "SELECT reason FROM dead_letters") == "unidentified"
    engine.dispose()


def test_a_nul_in_an_id_is_stored_without_it_and_the_body_byte_exact(
    client: FlaskClient, settings: Settings
) -> None:
    # Given a signed event whose id and buyer name carry U+0000 (PostgreSQL text holds none)
    event = checkout_completed(customer_details={"name": "Ada\x00 Lovelace"})
    event["id"] = "evt_nul\x00"
    body, headers = signed(event)
    assert b"\\u0000" in body

    # When it arrives
    response = client.post("/webhooks/stripe", data=body, headers=headers)

    # Then it is accepted (not a 500 the provider would retry for days), its id without the NUL
    assert response.status_code == 202, response.get_data(as_text=True)
    engine = create_db_engine(settings)
    [row] = rows(engine, "SELECT external_id, body FROM events")
    engine.dispose()
    assert row["external_id"] == "evt_nul"
    assert bytes(row["body"]) == body
