"""GA4 Measurement Protocol: names and params, one client per request and 25 events at most,
pseudonymous client ids, per-delivery results, and the optional validation pass."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from pipeline.delivery.deadletter import trace_of
from pipeline.errors import ContractError, PermanentError, RetryableError
from pipeline.log.identity import email_hash
from pipeline.providers.base import DeliveryRef
from pipeline.providers.ga4.destination import DESTINATION, Ga4Options, Pending, requests_of
from pipeline.providers.ga4.events import client_id, event_name, event_params
from pipeline.providers.shared import shape
from tests.support.canned import Answer, Canned
from tests.support.contexts import destination_config, destination_context
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT
from tests.support.servers import free_port

FIXTURES = FIXTURE_ROOT / "ga4"
NOW = datetime(2026, 10, 2, 9, 0, tzinfo=UTC).timestamp()
NO_CONTENT: Answer = (204, None, {})


def send(
    items: list[tuple[DeliveryRef, dict[str, Any]]], *answers: Answer, **options: Any
) -> tuple[dict[int, Any], Canned]:
    loaded = Ga4Options().load(
        {"measurement_id": "G-STACKWIRE1", "api_secret": "s3cr3t", **options}
    )
    destination = destination_config(
        DESTINATION,
        api_base="https://www.google-analytics.com",
        timeout_seconds=2.0,
        options=loaded,
    )
    wire, session = Canned(*answers, default=NO_CONTENT), requests.Session()
    session.mount("https://", wire)
    ctx = destination_context(destination, http=session, now=NOW)
    return DESTINATION.perform_batch(ctx, items), wire


def purchase(
    number: int,
    email: str = "ada@example.com",
    *,
    kind: str = "purchase.completed",
    amount: int = 4900,
    currency: str = "usd",
    ago: float = 3600,
    **contact: Any,
) -> dict[str, Any]:
    key = f"stripe:cs_{number}" if kind == "purchase.completed" else f"stripe:ch_{number}:refunded"
    return shape.event(
        kind,
        key=key,
        source="stripe_crm",
        provider="stripe",
        occurred_at=NOW - ago,
        contact=shape.contact(email, name="Ada Lovelace", **contact),
        purchase={
            "id": f"cs_{number}",
            "amount": amount,
            "currency": currency,
            "items": [
                {
                    "product": "price_course",
                    "name": "Creator Course",
                    "quantity": 2,
                    "amount": amount,
                }
            ],
        },
    )


def analytics(name: str, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return shape.event(
        "analytics.event",
        key=f"hook:{name}",
        source="hmac-github",
        provider="generic",
        occurred_at=NOW - 60,
        analytics={"name": name, "distinct_id": "user-7", "properties": properties or {}},
    )


def ref(number: int) -> DeliveryRef:
    return DeliveryRef(
        id=number, action="ga4.track", verb="track", idempotency_key=f"sw_{number:040d}", attempt=1
    )


# --- names and params ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "name"),
    [
        (purchase(1), "purchase"),
        (purchase(1, kind="purchase.refunded"), "refund"),
        (
            shape.event(
                "subscription.payment_failed",
                key="stripe:sub_1:x",
                source="s",
                provider="stripe",
                occurred_at=NOW,
                subscription={"id": "sub_1", "status": "past_due"},
            ),
            "subscription_payment_failed",
        ),
        (analytics("Lesson Watched / 3-min"), "Lesson_Watched___3_min"),
        (analytics("x" * 60), "x" * 40),
    ],
)
def test_each_canonical_type_has_a_ga4_name(event: dict[str, Any], name: str) -> None:
    assert event_name(event) == name


@pytest.mark.parametrize(
    "refused",
    [
        "_internal",
        "firebase_open",
        "ga_thing",
        "Google_x",
        "3d_view",
        "page_view",
        "session_start",
        "é_accent",
    ],
)
def test_analytics_names_ga4_refuses_are_failed_not_sent(refused: str) -> None:
    with pytest.raises(ContractError):
        event_name(analytics(refused))


def test_a_purchase_carries_transaction_value_currency_and_items() -> None:
    assert event_params(purchase(1, amount=1500, currency="jpy")) == {
        "transaction_id": "stripe:cs_1",
        "value": 1500.0,
        "currency": "JPY",
        "items": [
            {
                "item_id": "price_course",
                "quantity": 2,
                "item_name": "Creator Course",
                "price": 750.0,
            }
        ],
    }


def test_a_refund_names_the_purchase_it_undoes() -> None:
    bought, refunded = purchase(1), purchase(1, kind="purchase.refunded")
    assert event_params(refunded)["transaction_id"] == event_params(bought)["transaction_id"]
    assert event_params(bought)["transaction_id"] == bought["key"]


def test_analytics_properties_become_safe_scalar_params() -> None:
    params = event_params(
        analytics(
            "watched",
            {
                "lesson id": "L1",
                "seconds": 185,
                "done": True,
                "_hidden": "x",
                "tags": ["a"],
                "long": "y" * 300,
            },
        )
    )
    assert params == {"lesson_id": "L1", "seconds": 185, "done": 1, "long": "y" * 100}


# --- who -----------------------------------------------------------------------------------------


def test_the_source_s_client_id_is_kept() -> None:
    assert client_id(purchase(1, client_id="1795307548.2961428101"), "") == "1795307548.2961428101"


def test_without_one_the_client_id_is_pseudonymous_stable_and_salted() -> None:
    made = client_id(purchase(1), "")
    left, _, right = made.partition(".")
    assert left.isdigit() and right.isdigit()
    assert made == client_id(purchase(2, "ADA@example.com"), "")  # the same person
    assert made != client_id(purchase(1, "grace@example.org"), "")
    assert made != client_id(purchase(1), "creator-salt")
    assert "ada" not in made and email_hash("ada@example.com")[:8] not in made


# --- requests ------------------------------------------------------------------------------------


def test_a_batch_is_grouped_by_client_and_cut_into_requests_of_25() -> None:
    items = [(ref(n), purchase(n)) for n in range(60)]
    items += [(ref(100 + n), purchase(100 + n, "grace@example.org")) for n in range(3)]

    results, wire = send(items)

    bodies = wire.bodies()
    assert sorted(len(b["events"]) for b in bodies) == [3, 10, 25, 25]
    assert all(set(b) == {"client_id", "events"} for b in bodies)
    per_client = {b["client_id"] for b in bodies if len(b["events"]) != 3}
    assert per_client == {client_id(purchase(0), "")}
    url = wire.sent[0].url
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query == {"measurement_id": ["G-STACKWIRE1"], "api_secret": ["s3cr3t"]}
    assert urlsplit(url).path == "/mp/collect"
    assert set(results) == {delivery.id for delivery, _ in items}
    assert results[5] == {"client_id": client_id(purchase(5), ""), "event": "purchase"}
    sent = [e["params"]["transaction_id"] for b in bodies for e in b["events"]]
    assert sorted(sent) == sorted(f"stripe:cs_{n}" for n in [*range(60), 100, 101, 102])


def test_a_user_id_from_the_contact_makes_its_own_requests() -> None:
    items = [
        (ref(1), purchase(1, external_ids={"stripe_customer": "cus_1"})),
        (ref(2), purchase(2)),
    ]

    _, wire = send(items, user_id_from="stripe_customer")

    assert sorted(b.get("user_id", "-") for b in wire.bodies()) == ["-", "cus_1"]


def test_requests_stay_under_130_kb() -> None:
    pending = [Pending(n, {"name": "x"}, 40_000) for n in range(7)]
    chunks = requests_of(pending)
    assert [len(c) for c in chunks] == [3, 3, 1]


def test_timestamps_come_from_occurred_at_within_the_72_hours_ga4_accepts() -> None:
    items = [
        (ref(1), purchase(1, ago=3600)),
        (ref(2), purchase(2, ago=4 * 86400)),
        (ref(3), purchase(3, ago=-120)),
    ]

    _, wire = send(items)

    events = {e["params"]["transaction_id"]: e for e in wire.bodies()[0]["events"]}
    assert events["stripe:cs_1"]["timestamp_micros"] == int((NOW - 3600) * 1_000_000)
    assert "timestamp_micros" not in events["stripe:cs_2"]  # recorded on arrival, not dropped
    assert events["stripe:cs_3"]["timestamp_micros"] == int(NOW * 1_000_000)  # never in the future


# --- failures ------------------------------------------------------------------------------------


def test_a_refused_name_fails_its_delivery_alone() -> None:
    results, wire = send([(ref(1), analytics("_bad")), (ref(2), purchase(2))])
    assert isinstance(results[1], ContractError)
    assert results[2]["event"] == "purchase"
    assert len(wire.bodies()[0]["events"]) == 1


def test_validation_fails_what_the_debug_server_reports_and_sends_the_rest() -> None:
    bad = json.loads((FIXTURES / "debug_invalid_name.json").read_text())
    items = [(ref(1), purchase(1)), (ref(2), purchase(2))]

    results, wire = send(items, (200, bad, {}), NO_CONTENT, validate=True)

    assert [urlsplit(r.url).path for r in wire.sent] == ["/debug/mp/collect", "/mp/collect"]
    assert len(wire.bodies()[0]["events"]) == 2
    assert [e["params"]["transaction_id"] for e in wire.bodies()[1]["events"]] == ["stripe:cs_2"]
    assert isinstance(results[1], PermanentError) and "NAME_INVALID" in results[1].message
    assert results[2]["event"] == "purchase"


def test_a_valid_batch_passes_validation_untouched() -> None:
    fine = json.loads((FIXTURES / "debug_valid.json").read_text())
    results, wire = send([(ref(1), purchase(1))], (200, fine, {}), NO_CONTENT, validate=True)
    assert results[1]["event"] == "purchase"
    assert wire.bodies()[0] == wire.bodies()[1]


def test_an_outage_on_the_first_request_fails_the_whole_batch() -> None:
    items = [(ref(1), purchase(1)), (ref(2), purchase(2, "grace@example.org"))]
    with pytest.raises(RetryableError):
        send(items, (503, {"error": {"code": 503}}, {}))


def test_an_outage_after_a_success_keeps_the_success_and_stops_sending() -> None:
    items = [(ref(n), purchase(n, f"buyer{n}@example.com")) for n in range(3)]

    results, wire = send(items, NO_CONTENT, (500, None, {}))

    assert len(wire.sent) == 2
    assert results[0]["event"] == "purchase"
    assert isinstance(results[1], RetryableError) and results[1] is results[2]


def test_the_api_secret_never_reaches_a_result_or_an_error() -> None:
    items = [(ref(n), purchase(n, f"buyer{n}@example.com")) for n in range(2)]
    results, _ = send(items, NO_CONTENT, (400, None, {}))
    text = json.dumps({k: str(v) for k, v in results.items()})
    assert "s3cr3t" not in text and "buyer" not in text
    assert hashlib.sha256(b"s3cr3t").hexdigest() not in text


def test_an_unreadable_validation_answer_sends_nothing_and_tries_again_later() -> None:
    with pytest.raises(RetryableError) as raised:
        send([(ref(1), purchase(1))], (200, ["not", "an", "object"], {}), validate=True)
    assert raised.value.reason == "ga4_debug_unreadable"


def test_an_unreachable_ga4_keeps_its_secret_out_of_the_dead_letter_trace() -> None:
    # Given GA4 refusing connections: urllib3's error text spells out /mp/collect?…&api_secret=…
    loaded = Ga4Options().load({"measurement_id": "G-STACKWIRE1", "api_secret": "Zx9QwErTyUi"})
    destination = destination_config(
        DESTINATION,
        api_base=f"http://127.0.0.1:{free_port()}",
        timeout_seconds=2.0,
        options=loaded,
    )
    ctx = destination_context(destination, now=NOW)

    # When a batch is sent
    with pytest.raises(RetryableError) as raised:
        DESTINATION.perform_batch(ctx, [(ref(1), purchase(1))])

    # Then what a dead letter keeps (the formatted exception chain) holds neither secret nor query
    trace = trace_of(raised.value)
    assert raised.value.reason == "connection_error"
    assert "Zx9QwErTyUi" not in trace and "G-STACKWIRE1" not in trace and "api_secret" not in trace
