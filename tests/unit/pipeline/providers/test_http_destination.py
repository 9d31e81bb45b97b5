"""The generic HTTP destination: its template resolver, its options, and real requests to the
sandbox's webhook sink, which checks the Standard Webhooks signature for real."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from marshmallow import ValidationError
from standardwebhooks import Webhook

from devtools.sandbox.state import Fault, SandboxState
from pipeline.config.load import load_config
from pipeline.config.model import CircuitPolicy, Config, DestinationConfig
from pipeline.errors import ConfigurationError, PermanentError, RetryableError
from pipeline.providers.base import DeliveryRef
from pipeline.providers.http.destination import DESTINATION, HttpOptions, render
from pipeline.providers.shared import shape
from tests.support.contexts import destination_config, destination_context
from tests.support.stack import CONFIG, ThreadedServer, serve_sandbox

SECRET = "whsec_c3RhY2t3aXJlLW91dGJvdW5kLWh0dHAtc2lnbmluZzE="  # the orders-hook's, 60-generic.toml
EVENT = shape.event(
    "purchase.completed",
    key="sw-orders:ord_1",
    source="sw-orders",
    provider="standard_webhooks",
    occurred_at=1_772_366_400,
    contact=shape.contact("ada@example.com", first_name="Ada", last_name="Lovelace"),
    purchase={
        "id": "ord_1",
        "amount": 4900,
        "currency": "eur",
        "items": [{"product": "generic-course-pro", "quantity": 1}],
    },
)
DELIVERY = DeliveryRef(
    id=7,
    action="orders-hook.send",
    verb="send",
    idempotency_key="sw_0123456789abcdef0123456789abcdef01234567",
    attempt=1,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ThreadedServer, SandboxState]]:
    yield from serve_sandbox(3)


@pytest.fixture
def config(sandbox: tuple[ThreadedServer, SandboxState]) -> Config:
    server, state = sandbox
    state.reset()
    return load_config(CONFIG, {"SANDBOX_PORT": str(server.port)})


def hook(server: ThreadedServer, name: str, secret: str | None) -> None:
    answer = requests.put(
        f"{server.url}/_sandbox/webhook_sink/hooks/{name}", json={"secret": secret}, timeout=5
    )
    answer.raise_for_status()


def received(server: ThreadedServer, name: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{server.url}/_sandbox/webhook_sink/hooks/{name}", timeout=5)
    deliveries: list[dict[str, Any]] = answer.json()["deliveries"]
    return deliveries


def send(config: Config, destination: DestinationConfig | str) -> dict[str, Any]:
    found = config.destinations[destination] if isinstance(destination, str) else destination
    return DESTINATION.perform(destination_context(found, config), DELIVERY, EVENT)


def destination(server: ThreadedServer, **options: Any) -> DestinationConfig:
    options.setdefault("url", f"{server.url}/webhook_sink/hooks/custom")
    return destination_config(
        DESTINATION,
        "custom",
        timeout_seconds=2.0,
        circuit=CircuitPolicy(cooldown=1.0),
        options=HttpOptions().load(options),
    )


# --- the template resolver ---------------------------------------------------------------------


def test_a_whole_reference_keeps_the_type_of_its_value() -> None:
    template = {"total": "{{ purchase.amount }}", "who": "{{contact}}", "none": "{{ booking.id }}"}
    assert render(template, EVENT) == {
        "total": 4900,
        "who": EVENT["contact"],
        "none": None,
    }


def test_references_inside_text_become_text() -> None:
    template = [
        "Order {{ purchase.id }} by {{ contact.first_name }}: {{ purchase.amount }}",
        "{{ purchase.items.0.product }}",
        "{{ purchase.items.5.product }}!",
    ]
    assert render(template, EVENT) == ["Order ord_1 by Ada: 4900", "generic-course-pro", "!"]


def test_values_from_the_event_are_never_interpreted_again() -> None:
    event = {**EVENT, "contact": {**EVENT["contact"], "first_name": "{{ key }}"}}
    assert render({"n": "Hi {{ contact.first_name }}"}, event) == {"n": "Hi {{ key }}"}


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"a": "{{ secrets.api_key }}"}, "does not start with a canonical event field"),
        ({"a": "{{ contact.email | upper }}"}, "not a {{ path }} reference"),
        ({"a": "{{ __class__ }}"}, "does not start with a canonical event field"),
        ({"a": ["{{ delivery.attempt }}"]}, "delivery offers"),
        ("raw", 'body is "canonical" or a template object'),
    ],
)
def test_a_template_that_cannot_resolve_is_refused_when_the_config_loads(
    body: Any, complaint: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        HttpOptions().load({"url": "https://example.com/hook", "body": body})
    assert complaint in str(raised.value.messages)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"method": "GET"}, "method"),
        ({"headers": {"webhook-signature": "v1,forged"}}, "headers"),
        ({"signing_secret": "whsec_c2hvcnQ="}, "signing_secret"),  # 5 bytes: too short a key
        ({"signing_secret": "not-a-secret!"}, "signing_secret"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"verb": "POST"}, "verb"),
    ],
)
def test_bad_options_name_their_key(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        HttpOptions().load({"url": "https://example.com/hook", **options})
    assert field in raised.value.messages


# --- real requests -----------------------------------------------------------------------------


def test_the_canonical_event_is_sent_signed_and_the_sink_verifies_it(
    sandbox: tuple[ThreadedServer, SandboxState], config: Config
) -> None:
    server, _ = sandbox
    hook(server, "orders", SECRET)
    result = send(config, "orders-hook")
    assert result == {"status": 200, "webhook_id": DELIVERY.idempotency_key}
    [delivery] = received(server, "orders")
    assert delivery["json"] == EVENT
    assert delivery["webhook_id"] == DELIVERY.idempotency_key  # what the receiver dedupes on
    assert delivery["headers"]["X-Api-Key"] == "orders-hook-test-key"
    # and the reference library accepts exactly what went over the wire
    assert Webhook(SECRET).verify(delivery["body"], delivery["headers"]) == EVENT


def test_a_resend_carries_the_same_webhook_id_so_the_receiver_sees_a_duplicate(
    sandbox: tuple[ThreadedServer, SandboxState], config: Config
) -> None:
    server, state = sandbox
    hook(server, "orders", SECRET)
    send(config, "orders-hook")
    send(config, "orders-hook")
    assert state.summary()["providers"]["webhook_sink"]["duplicates"] == {"delivery.received": 1}


def test_a_template_body_is_rendered_and_put(
    sandbox: tuple[ThreadedServer, SandboxState], config: Config
) -> None:
    server, _ = sandbox
    hook(server, "custom", None)
    body = {
        "email": "{{ contact.email }}",
        "cents": "{{ purchase.amount }}",
        "ref": "{{ delivery.idempotency_key }}",
        "fixed": [1, True, None],
    }
    send(config, destination(server, method="PUT", body=body))
    [delivery] = received(server, "custom")
    assert delivery["method"] == "PUT"
    assert delivery["json"] == {
        "email": "ada@example.com",
        "cents": 4900,
        "ref": DELIVERY.idempotency_key,
        "fixed": [1, True, None],
    }
    assert "webhook-signature" not in {h.lower() for h in delivery["headers"]}  # no secret


def test_a_receiver_refusing_the_signature_is_a_configuration_error(
    sandbox: tuple[ThreadedServer, SandboxState], config: Config
) -> None:
    server, _ = sandbox
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    hook(server, "orders", other)
    with pytest.raises(ConfigurationError) as raised:
        send(config, "orders-hook")
    assert raised.value.http_status == 401


def test_a_missing_endpoint_is_permanent_and_a_503_is_retried_after_its_delay(
    sandbox: tuple[ThreadedServer, SandboxState], config: Config
) -> None:
    server, state = sandbox
    with pytest.raises(PermanentError) as gone:
        send(config, "orders-hook")  # no hook named orders yet: 404
    assert gone.value.http_status == 404
    hook(server, "orders", SECRET)
    state.faults["webhook_sink"] = Fault(status=503, retry_after=7)
    with pytest.raises(RetryableError) as later:
        send(config, "orders-hook")
    assert (later.value.http_status, later.value.retry_after) == (503, 7.0)
