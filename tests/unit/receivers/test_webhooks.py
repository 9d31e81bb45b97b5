"""The webhook edge: what it accepts, what it refuses, and that nothing refused is stored."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from pipeline.config.load import load_config
from pipeline.errors import UnstorableEvent
from pipeline.log.db import create_db_engine
from pipeline.settings import Settings
from pipeline.signatures.body_hmac import body_hmac
from pipeline.signatures.timestamped_hmac import timestamped_hmac_hex
from receivers.app import create_app
from tests.support.db import rows, scalar
from tests.support.fixtures import FIXTURES
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


def _kept_aside(
    response: TestResponse,
    code: str,
    body: bytes,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A verified body we cannot read: refused with its reason, yet kept quarantined under its
    digest (never as a valid event), with a dead letter, and the refusal logged without the body."""
    assert response.status_code == 400, response.get_data(as_text=True)
    assert json_of(response)["error"]["code"] == code
    assert json_of(response)["error"]["message"].endswith(".")
    assert "Traceback" not in response.get_data(as_text=True)
    engine = create_db_engine(settings)
    [event] = rows(engine, "SELECT external_id, status, reason, body FROM events")
    [dead] = rows(engine, "SELECT step, failure_class, reason, error FROM dead_letters")
    engine.dispose()
    assert event["external_id"] == f"sha256:{hashlib.sha256(body).hexdigest()}"
    assert (event["status"], event["reason"], bytes(event["body"])) == (
        "quarantined",
        "unreadable",
        body,
    )
    assert (dead["step"], dead["failure_class"], dead["reason"]) == (
        "receive",
        "contract",
        "unreadable",
    )
    assert code in dead["error"]
    [refusal] = [r for r in caplog.records if r.getMessage() == "refused a webhook request"]
    assert (refusal.source, refusal.status, refusal.code) == ("stripe", 400, code)  # type: ignore[attr-defined]


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


def test_malformed_json_is_400_and_kept_quarantined(
    client: FlaskClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = signed(b'{"id": "evt_1", "type": ')
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    _kept_aside(response, "malformed_json", body, settings, caplog)


def test_a_nesting_bomb_is_400_and_kept_quarantined(
    client: FlaskClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = signed(b'{"id": "evt_1", "type": "x", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    _kept_aside(response, "nesting_too_deep", body, settings, caplog)


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


def test_an_event_without_an_id_is_400_and_kept_quarantined(
    client: FlaskClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    event = checkout_completed()
    del event["id"]
    body, headers = signed(json.dumps(event).encode())
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    _kept_aside(response, "missing_event_id", body, settings, caplog)


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


def _thinkific_id_as_a_number() -> tuple[str, bytes, dict[str, str], str]:
    event = json.loads((FIXTURES / "thinkific" / "enrollment.created.json").read_text())
    event["id"] = 20190131191810790022472
    body = json.dumps(event).encode()
    signature = body_hmac("thinkific_test_key", body)
    headers = {"Content-Type": "application/json", "X-Thinkific-Hmac-Sha256": signature}
    return "thinkific", body, headers, "missing_event_id"


def _kit_without_events() -> tuple[str, bytes, dict[str, str], str]:
    event = json.loads((FIXTURES / "kit" / "subscriber.activated.json").read_text())
    event["events"] = []
    body, now = json.dumps(event).encode(), int(time.time())
    signature = f"t={now},v1={timestamped_hmac_hex('kit_whsec_current', now, body)}"
    headers = {"Content-Type": "application/json", "X-Kit-Signature": signature}
    return "kit", body, headers, "missing_events"


def _stripe_without_a_type() -> tuple[str, bytes, dict[str, str], str]:
    event = checkout_completed()
    del event["type"]
    body, headers = signed(event)
    return "stripe", body, headers, "missing_event_type"


@pytest.mark.parametrize(
    "unreadable", [_stripe_without_a_type, _thinkific_id_as_a_number, _kit_without_events]
)
def test_a_signed_but_unreadable_payload_is_400_kept_once_and_logged_without_its_body(
    client: FlaskClient,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    unreadable: Callable[[], tuple[str, bytes, dict[str, str], str]],
) -> None:
    # Given a validly signed body the provider's module cannot read
    source, body, headers, code = unreadable()

    # When the provider delivers it, then retries it (it was refused)
    first = client.post(f"/webhooks/{source}", data=body, headers=headers)
    again = client.post(f"/webhooks/{source}", data=body, headers=headers)

    # Then each answer is a 400 with the reason, and the body is kept once, quarantined
    assert [first.status_code, again.status_code] == [400, 400]
    assert json_of(first)["error"]["code"] == json_of(again)["error"]["code"] == code
    engine = create_db_engine(settings)
    [event] = rows(engine, "SELECT source, status, reason, redeliveries, body FROM events")
    dead = scalar(engine, "SELECT count(*) FROM dead_letters WHERE reason = 'unreadable'")
    engine.dispose()
    assert (event["source"], event["status"], event["reason"]) == (
        source,
        "quarantined",
        "unreadable",
    )
    assert (event["redeliveries"], bytes(event["body"]), dead) == (1, body, 1)
    # and each refusal is logged with its source and code, never the body or an e-mail
    refusals = [r for r in caplog.records if r.getMessage() == "refused a webhook request"]
    assert [(r.source, r.code) for r in refusals] == [(source, code)] * 2  # type: ignore[attr-defined]
    assert "@" not in caplog.text and body.decode()[:40] not in caplog.text


def test_an_id_over_255_characters_is_400_id_too_long_and_kept_under_its_digest(
    client: FlaskClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # an id this long once hit the btree's limit, which the receiver took for an outage (503)
    event = checkout_completed()
    event["id"] = "evt_" + secrets.token_hex(1500)  # incompressible: past the btree limit
    body, headers = signed(event)
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    _kept_aside(response, "id_too_long", body, settings, caplog)


def test_an_unsigned_request_is_refused_logged_and_not_kept(
    client: FlaskClient, stored: Count, caplog: pytest.LogCaptureFixture
) -> None:
    body, _ = signed(checkout_completed())
    response = client.post(
        "/webhooks/stripe", data=body, headers={"Content-Type": "application/json"}
    )
    _refused(client, response, 401, "missing_signature", stored)
    [refusal] = [r for r in caplog.records if r.getMessage() == "refused a webhook request"]
    assert (refusal.source, refusal.status, refusal.code) == ("stripe", 401, "missing_signature")  # type: ignore[attr-defined]


def test_a_value_postgresql_refuses_for_good_is_400_not_an_outage(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what the writer raises for SQLSTATE 22/54 (tests/unit/pipeline/log/test_ingest.py): a
    # 503 would make the provider retry for days an event that can never be stored
    def refused(_: object) -> None:
        raise UnstorableEvent("ProgramLimitExceeded")

    monkeypatch.setattr(client.application.extensions["stackwire"].writer, "record", refused)
    body, headers = signed(checkout_completed())
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    assert response.status_code == 400
    assert json_of(response)["error"]["code"] == "unstorable_event"
    assert "Retry-After" not in response.headers
