"""PayPal as a source: identity, contracts and drift, money by region, the canonical purchase, and
the verify task's postback and fetches against the sandbox's PayPal over real HTTP.

Fixtures in tests/fixtures/paypal/ are shaped like PayPal's published samples and schemas: a
PAYMENT.CAPTURE.COMPLETED webhook, its capture (`GET /v2/payments/captures/{id}`), its order
(`GET /v2/checkout/orders/{id}`), a PAYMENT.CAPTURE.REFUNDED webhook and its refund.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from marshmallow import Schema

from devtools.sandbox.state import SandboxState
from pipeline.config.load import build_config
from pipeline.config.model import SourceConfig
from pipeline.errors import BadPayload, ConfigError, ConfigurationError, ContractError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, SourceContext, Verdict
from pipeline.providers.paypal.mapping import minor_units
from pipeline.providers.paypal.source import SOURCE, linked_id, postback_body
from schemas.canonical import validate_canonical
from schemas.contracts.base import ContractReport, check
from tests.support.contexts import source_config, source_context
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT
from tests.support.stack import serve_sandbox

FIXTURES = FIXTURE_ROOT / "paypal"
WEBHOOK_ID = "8PT597110X687430LKGECATA"
CAPTURE_PATH = r"/v2/payments/captures/([^/]+)$"


def load(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return found


def source(api_base: str = "https://api-m.paypal.com", client_id: str = "client-1") -> SourceConfig:
    return source_config(
        SOURCE,
        signing_secrets=(),
        api_base=api_base,
        max_body_bytes=262144,
        options={
            "client_id": client_id,
            "client_secret": "secret-1",
            "webhook_id": WEBHOOK_ID,
            "cert_hosts": [],
        },
    )


def stored(
    body: bytes, headers: dict[str, str] | None = None
) -> tuple[StoredEvent, dict[str, Any]]:
    payload = SOURCE.parse(body)
    found = SOURCE.identify(payload, body, {})
    kept = {h: v for h, v in (headers or {}).items() if h in SOURCE.stored_headers}
    event = StoredEvent(
        id=1,
        source="paypal",
        provider="paypal",
        external_id=found.external_id,
        provider_type=found.provider_type,
        lane="payments",
        body=body,
        headers=kept,
        received_at=datetime(2024, 5, 14, 9, 11, 55, tzinfo=UTC),
        status="verified",
    )
    return event, payload


def contract(name: str, payload: dict[str, Any]) -> type[Schema]:
    found = SOURCE.contract_for(name, payload)
    assert found is not None
    return found


def canonical(event_name: str, objects: dict[str, Any]) -> dict[str, Any] | Verdict:
    event, payload = stored(json.dumps(load(event_name)).encode())
    ctx = source_context(source(), now=0.0)
    result = SOURCE.canonicalize(ctx, event, payload, Fetched(objects, "paypal:x", 0))
    if isinstance(result, dict):
        validate_canonical(result)
    return result


def completed(
    capture: dict[str, Any] | None = None, order: Any = "fixture"
) -> dict[str, Any] | Verdict:
    found = {
        "capture": capture or load("capture"),
        "order": load("order") if order == "fixture" else order,
    }
    return canonical("PAYMENT.CAPTURE.COMPLETED", found)


def in_currency(currency: str, value: str) -> tuple[dict[str, Any], dict[str, Any]]:
    capture, order = load("capture"), load("order")
    money = {"currency_code": currency, "value": value}
    capture["amount"] = money
    unit = order["purchase_units"][0]
    unit["amount"] = {**money, "breakdown": {"item_total": money}}
    unit["items"][0]["unit_amount"] = money
    return capture, order


# -- configuration --------------------------------------------------------------------------------


def configured(**changes: Any) -> SourceConfig:
    spec = {
        "provider": "paypal",
        "signing_secrets": ["paypal-url-secret"],
        "client_id": "a",
        "client_secret": "b",
        "webhook_id": WEBHOOK_ID,
    }
    spec.update(changes)
    raw = {"sources": {"pp": {k: v for k, v in spec.items() if v is not None}}}
    return build_config(raw, {}, Path("paypal.toml")).sources["pp"]


def test_a_paypal_source_takes_a_url_secret_and_defaults_to_the_live_api() -> None:
    found = configured(cert_hosts=["certs.example.net:8443"])
    assert (found.api_base, found.signing_secrets, found.on_unknown_fields) == (
        "https://api-m.paypal.com",
        ("paypal-url-secret",),
        "warn",
    )
    assert found.options["cert_hosts"] == ["certs.example.net:8443"]
    # rows stored before PayPal's postback verifies them are limited by default
    assert (found.unverified_rate_limit, found.unverified_burst) == (20.0, 100)


def test_a_paypal_source_without_a_url_secret_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError) as refused:
        configured(signing_secrets=None)
    assert str(refused.value) == "sources.pp.signing_secrets: at least one secret is required"


def test_the_unverified_limit_can_be_set_per_source() -> None:
    found = configured(unverified_rate_limit="5/s", unverified_burst=10)
    assert (found.unverified_rate_limit, found.unverified_burst) == (5.0, 10)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"client_secret": None}, "sources.pp.client_secret: Missing data for required field."),
        ({"webhook_id": "WH-1"}, "sources.pp.webhook_id: String does not match expected pattern."),
        (
            {"cert_hosts": ["x:99999"]},
            "sources.pp.cert_hosts: 'x:99999' is not a host or host:port.",
        ),
        ({"client_key": "typo"}, "sources.pp.client_key: Unknown field."),
    ],
)
def test_a_bad_paypal_source_stops_start_up_naming_the_key(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        configured(**changes)
    assert str(raised.value) == message


# -- identity and contracts -----------------------------------------------------------------------


def test_an_event_is_identified_by_its_webhook_event_id_and_type() -> None:
    event, _ = stored((FIXTURES / "PAYMENT.CAPTURE.COMPLETED.json").read_bytes())
    assert (event.external_id, event.provider_type) == (
        "WH-58D329510W468432D-8HN650336L201105X",
        "PAYMENT.CAPTURE.COMPLETED",
    )
    assert SOURCE.lane_for("PAYMENT.CAPTURE.REFUNDED") == "payments"
    assert SOURCE.lane_for("BILLING.SUBSCRIPTION.ACTIVATED") is None  # stored, then ignored


@pytest.mark.parametrize(
    "body,code",
    [
        (b'{"event_type": "PAYMENT.CAPTURE.COMPLETED"}', "missing_event_id"),
        (b'{"id": 7, "event_type": "PAYMENT.CAPTURE.COMPLETED"}', "missing_event_id"),
        (b'{"id": "WH-1"}', "missing_event_type"),
        (b'["WH-1"]', "missing_event_id"),
    ],
)
def test_an_event_without_id_or_type_is_a_bad_payload(body: bytes, code: str) -> None:
    with pytest.raises(BadPayload) as raised:
        SOURCE.identify(SOURCE.parse(body), body, {})
    assert raised.value.code == code


@pytest.mark.parametrize(
    "name", ["PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.REFUNDED", "CHECKOUT.ORDER.APPROVED"]
)
def test_the_recorded_payloads_meet_their_contracts(name: str) -> None:
    payload = load(name)
    assert check(contract(name, payload), payload) == ContractReport()


def test_a_new_paypal_field_is_drift_to_warn_about_not_a_broken_contract() -> None:
    payload = load("PAYMENT.CAPTURE.COMPLETED")
    payload["resource"]["network_token"] = {"used": True}
    payload["transmission_region"] = "EU"
    report = check(contract("PAYMENT.CAPTURE.COMPLETED", payload), payload)
    assert sorted(report.unknown) == ["resource.network_token", "transmission_region"]
    assert not report.broken
    assert SOURCE.default_on_unknown_fields == "warn"


def test_a_vanished_or_reshaped_field_we_read_breaks_the_contract() -> None:
    payload = load("PAYMENT.CAPTURE.COMPLETED")
    del payload["resource"]["amount"]
    payload["resource"]["status"] = "SETTLED"
    report = check(contract("PAYMENT.CAPTURE.COMPLETED", payload), payload)
    assert report.missing == ["resource.amount"]
    assert report.invalid and report.invalid[0].startswith("resource.status")


# -- money by region ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "currency,value,expected",
    [
        ("USD", "21.12", (2112, "usd")),
        ("USD", "21", (2100, "usd")),
        ("EUR", "0.50", (50, "eur")),
        ("JPY", "1500", (1500, "jpy")),
        ("JPY", "1500.00", (1500, "jpy")),
        ("KRW", "23000", (23000, "krw")),
        ("KWD", "1.250", (1250, "kwd")),
        ("BHD", "10", (10000, "bhd")),
        ("HUF", "1000", (100000, "huf")),
    ],
)
def test_amounts_become_minor_units_of_the_currency(
    currency: str, value: str, expected: tuple[int, str]
) -> None:
    assert minor_units({"currency_code": currency, "value": value}) == expected


@pytest.mark.parametrize(
    "money",
    [
        {"currency_code": "USD", "value": "1,000.00"},
        {"currency_code": "USD", "value": "21.125"},
        {"currency_code": "JPY", "value": "1500.5"},
        {"currency_code": "KWD", "value": "1.2505"},
        {"currency_code": "USD", "value": "-5.00"},
        {"currency_code": "USD", "value": "1e3"},
        {"currency_code": "USD", "value": 21.12},
        {"currency_code": "usd", "value": "1.00"},
        {"currency_code": "USD", "value": " 1.00"},
        {"value": "1.00"},
        None,
    ],
)
def test_amounts_are_read_strictly(money: Any) -> None:
    with pytest.raises(ContractError):
        minor_units(money)


# -- the canonical purchase -----------------------------------------------------------------------


def test_a_completed_capture_is_one_purchase_keyed_by_its_order() -> None:
    found = completed()
    assert isinstance(found, dict)
    assert found["type"] == "purchase.completed"
    assert found["key"] == "paypal:5O190127TN364715T"
    assert found["occurred_at"] == "2024-05-14T09:11:54.338000Z"
    assert found["contact"] == {
        "email": "ada.lovelace@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "external_ids": {"paypal_payer": "QYR5Z8XDVJNXQ"},
        "client_id": None,
    }
    assert found["purchase"] == {
        "id": "5O190127TN364715T",
        "payment_id": "42311647XV020574X",
        "amount": 2112,
        "currency": "usd",
        "invoice_number": "INV-2024-0042",
        "items": [
            {"product": "paypal-course", "name": "Creator Course", "quantity": 1, "amount": 2112}
        ],
    }


@pytest.mark.parametrize("currency,value,amount", [("JPY", "1500", 1500), ("KWD", "3.125", 3125)])
def test_zero_and_three_decimal_currencies_keep_their_value(
    currency: str, value: str, amount: int
) -> None:
    found = completed(*in_currency(currency, value))
    assert isinstance(found, dict)
    assert (found["purchase"]["amount"], found["purchase"]["currency"]) == (
        amount,
        currency.lower(),
    )
    assert found["purchase"]["items"][0]["amount"] == amount


def test_the_product_key_is_the_sku_else_custom_id_else_reference_id() -> None:
    order = load("order")
    unit = order["purchase_units"][0]

    def product() -> str:
        found = completed(order=copy.deepcopy(order))
        assert isinstance(found, dict)
        return str(found["purchase"]["items"][0]["product"])

    assert product() == "paypal-course"
    del unit["items"][0]["sku"]
    assert product() == "creator-order-17"
    del unit["custom_id"]
    unit["reference_id"] = "course-unit"
    assert product() == "course-unit"
    del unit["reference_id"]
    with pytest.raises(ContractError):
        product()


def test_quantities_arrive_as_strings_and_multiply_the_unit_price() -> None:
    order = load("order")
    order["purchase_units"][0]["items"][0]["quantity"] = "3"
    found = completed(order=order)
    assert isinstance(found, dict)
    assert found["purchase"]["items"][0] == {
        "product": "paypal-course",
        "name": "Creator Course",
        "quantity": 3,
        "amount": 6336,
    }


def test_invoice_number_is_read_from_invoice_id_or_invoice_number() -> None:
    capture, order = load("capture"), load("order")
    del capture["invoice_id"]
    unit = order["purchase_units"][0]
    del unit["invoice_id"]
    unit["invoice_number"] = "2024-77"
    found = completed(capture, order)
    assert isinstance(found, dict)
    assert found["purchase"]["invoice_number"] == "2024-77"


def test_without_an_order_the_capture_is_the_purchase() -> None:
    found = completed(order=None)
    assert isinstance(found, dict)
    assert found["key"] == "paypal:42311647XV020574X"
    assert found["purchase"]["items"] == [{"product": "creator-order-17", "quantity": 1}]
    assert found["contact"]["email"] is None


@pytest.mark.parametrize(
    "status,verdict",
    [
        ("PENDING", Verdict("wait", "payment_not_final")),
        ("REFUNDED", Verdict("ignore", "refunded_before_processing")),
        ("DECLINED", Verdict("ignore", "capture_not_completed")),
    ],
)
def test_the_current_capture_decides_not_the_webhook(status: str, verdict: Verdict) -> None:
    assert completed({**load("capture"), "status": status}) == verdict


def test_a_partially_refunded_capture_was_still_paid() -> None:
    found = completed({**load("capture"), "status": "PARTIALLY_REFUNDED"})
    assert isinstance(found, dict) and found["type"] == "purchase.completed"


def refunded(refund: dict[str, Any] | None = None, capture_status: str = "REFUNDED") -> Any:
    objects = {
        "refund": refund or load("refund"),
        "order": load("order"),
        "capture": {**load("capture"), "status": capture_status},
    }
    return canonical("PAYMENT.CAPTURE.REFUNDED", objects)


def test_a_full_refund_is_purchase_refunded_keyed_by_the_refund() -> None:
    found = refunded()
    assert found["type"] == "purchase.refunded"
    assert found["key"] == "paypal:1JU08902781691411:refunded"
    assert found["purchase"]["id"] == "5O190127TN364715T"  # the same purchase as its completion
    assert (found["purchase"]["amount"], found["purchase"]["reason"]) == (2112, "refunded")
    assert found["contact"]["email"] == "ada.lovelace@example.com"


def test_partial_pending_and_failed_refunds_grant_nothing_back() -> None:
    assert refunded(capture_status="PARTIALLY_REFUNDED") == Verdict("ignore", "partial_refund")
    assert refunded({**load("refund"), "status": "PENDING"}) == Verdict("wait", "refund_not_final")
    assert refunded({**load("refund"), "status": "FAILED"}) == Verdict(
        "ignore", "refund_not_completed"
    )


def test_an_approved_order_waits_for_its_capture() -> None:
    event, payload = stored(json.dumps(load("CHECKOUT.ORDER.APPROVED")).encode())
    ctx = source_context(source(), now=0.0)
    assert SOURCE.fetch(ctx, event, payload) is None
    assert SOURCE.canonicalize(ctx, event, payload, None) == Verdict(
        "wait", "order_approved_not_captured"
    )


# -- ids and links --------------------------------------------------------------------------------


def test_a_link_gives_only_an_id_never_a_place_to_connect_to() -> None:
    refund = {"links": [{"rel": "up", "href": "https://evil.example/v2/payments/captures/ABC123"}]}
    assert linked_id(refund, "up", re.compile(CAPTURE_PATH)) == "ABC123"
    bad = {
        "links": [
            {"rel": "up", "href": "https://api-m.paypal.com/v2/payments/captures/..%2F..%2Fx"}
        ]
    }
    with pytest.raises(ContractError):
        linked_id(bad, "up", re.compile(CAPTURE_PATH))


def test_the_postback_carries_the_event_byte_for_byte() -> None:
    body = b'{"id": "WH-1",  "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {"id": "1"}}'
    headers = {
        "PAYPAL-TRANSMISSION-ID": "t-1",
        "PAYPAL-TRANSMISSION-TIME": "2024-05-14T09:11:55Z",
        "PAYPAL-TRANSMISSION-SIG": "c2ln",
        "PAYPAL-CERT-URL": "https://api.paypal.com/c",
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }
    event, _ = stored(body, headers)
    sent = postback_body(event, WEBHOOK_ID)
    assert sent.endswith(b'"webhook_event": ' + body + b"}")
    assert json.loads(sent) == {
        "auth_algo": "SHA256withRSA",
        "cert_url": "https://api.paypal.com/c",
        "transmission_id": "t-1",
        "transmission_sig": "c2ln",
        "transmission_time": "2024-05-14T09:11:55Z",
        "webhook_id": WEBHOOK_ID,
        "webhook_event": json.loads(body),
    }


# -- against the sandbox's PayPal ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, SandboxState]]:
    for server, state in serve_sandbox(3):
        yield server.url, state


@pytest.fixture
def cache(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("stackwire:paypal:*"):
        client.delete(key)
    yield client
    client.close()


def live_ctx(
    sandbox: tuple[str, SandboxState], cache: redis.Redis, client_id: str = "client-1"
) -> SourceContext:
    return source_context(source(f"{sandbox[0]}/paypal", client_id), redis=cache, now=0.0)


def emitted(
    sandbox: tuple[str, SandboxState], path: str = "purchases", **spec: Any
) -> dict[str, Any]:
    spec = {"email": "ada@example.com", "name": "Ada Lovelace", "webhook_id": WEBHOOK_ID, **spec}
    answer = requests.post(f"{sandbox[0]}/_sandbox/paypal/{path}", json=spec, timeout=10)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def token_calls(sandbox: tuple[str, SandboxState]) -> int:
    return sum(1 for c in sandbox[1].calls if c.path == "/paypal/v1/oauth2/token")


def test_a_genuine_transmission_verifies_and_the_token_is_reused(
    sandbox: Any, cache: redis.Redis
) -> None:
    ctx, before = live_ctx(sandbox, cache), token_calls(sandbox)
    for _ in range(2):
        webhook = emitted(sandbox)
        event, payload = stored(webhook["body"].encode(), webhook["headers"])
        assert SOURCE.verify(ctx, event, payload) is None
    assert token_calls(sandbox) == before + 1
    assert any(cache.ttl(k) > 32000 for k in cache.scan_iter("stackwire:paypal:token:*"))


@pytest.mark.parametrize("sent_for", ["tampered", "another_webhook_id"])
def test_a_failed_postback_is_a_configuration_error_to_fix_and_replay(
    sandbox: Any, cache: redis.Redis, sent_for: str
) -> None:
    # a body altered in transit, or genuine events signed for a webhook id other than ours (a
    # sandbox id on live): PayPal answers FAILURE for both, and our setting is the likelier cause
    if sent_for == "tampered":
        webhook = emitted(sandbox)
        body = webhook["body"].replace('"value": "21.12"', '"value": "0.01"', 1).encode()
        assert body != webhook["body"].encode()
    else:
        webhook = emitted(sandbox, webhook_id="9XY11122233344455LIVEWEBHOOK")
        body = webhook["body"].encode()
    event, payload = stored(body, webhook["headers"])
    with pytest.raises(ConfigurationError) as failed:
        SOURCE.verify(live_ctx(sandbox, cache), event, payload)
    assert (failed.value.failure_class, failed.value.reason) == ("configuration", "postback_failed")
    assert "webhook_id" in failed.value.message


def test_a_genuine_pending_capture_waits(sandbox: Any, cache: redis.Redis) -> None:
    webhook = emitted(sandbox, capture_status="PENDING")
    event, payload = stored(webhook["body"].encode(), webhook["headers"])
    assert SOURCE.verify(live_ctx(sandbox, cache), event, payload) == Verdict(
        "wait", "payment_not_final"
    )


def test_a_revoked_token_is_renewed_once_and_revoked_credentials_are_a_configuration_error(
    sandbox: Any, cache: redis.Redis
) -> None:
    ctx = live_ctx(sandbox, cache, client_id="client-to-revoke")
    webhook = emitted(sandbox)
    event, payload = stored(webhook["body"].encode(), webhook["headers"])
    assert SOURCE.verify(ctx, event, payload) is None
    requests.post(f"{sandbox[0]}/_sandbox/paypal/clients/client-to-revoke/revoke", timeout=10)
    before = token_calls(sandbox)
    with pytest.raises(ConfigurationError):
        SOURCE.verify(ctx, event, payload)
    assert token_calls(sandbox) == before + 1  # the cached token failed, a fresh one was asked for


def test_fetch_reads_the_capture_and_its_order_then_maps_them(
    sandbox: Any, cache: redis.Redis
) -> None:
    webhook = emitted(sandbox, currency="JPY", amount="1500", sku="paypal-course")
    event, payload = stored(webhook["body"].encode(), webhook["headers"])
    ctx = live_ctx(sandbox, cache)
    fetched = SOURCE.fetch(ctx, event, payload)
    assert fetched is not None and fetched.object_key == f"paypal:capture:{webhook['capture']}"
    found = SOURCE.canonicalize(ctx, event, payload, fetched)
    assert isinstance(found, dict)
    validate_canonical(found)
    assert found["key"] == f"paypal:{webhook['order']}"
    assert (found["purchase"]["amount"], found["purchase"]["currency"]) == (1500, "jpy")
    assert found["contact"]["email"] == "ada@example.com"


def test_fetch_follows_a_refund_up_to_its_capture_and_order(
    sandbox: Any, cache: redis.Redis
) -> None:
    bought = emitted(sandbox)
    webhook = emitted(sandbox, f"captures/{bought['capture']}/refund")
    event, payload = stored(webhook["body"].encode(), webhook["headers"])
    ctx = live_ctx(sandbox, cache)
    fetched = SOURCE.fetch(ctx, event, payload)
    assert fetched is not None
    assert fetched.object["capture"]["id"] == bought["capture"]
    found = SOURCE.canonicalize(ctx, event, payload, fetched)
    assert isinstance(found, dict)
    assert (found["type"], found["key"]) == (
        "purchase.refunded",
        f"paypal:{webhook['refund']}:refunded",
    )
    assert found["purchase"]["id"] == bought["order"]


def test_a_malformed_id_never_reaches_a_url(sandbox: Any, cache: redis.Redis) -> None:
    payload = load("PAYMENT.CAPTURE.COMPLETED")
    payload["resource"]["id"] = "../../v1/oauth2/token"
    event, parsed = stored(json.dumps(payload).encode())
    calls = len(sandbox[1].calls)
    with pytest.raises(ContractError):
        SOURCE.fetch(live_ctx(sandbox, cache), event, parsed)
    assert len(sandbox[1].calls) == calls
