"""Slack notifications: messages per canonical type (never a raw address), the webhook URL kept
secret, and Slack's answers classified, against the sandbox's incoming-webhook emulator."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests
from marshmallow import ValidationError

from devtools.sandbox.state import Fault, SandboxState
from pipeline.config.load import load_config
from pipeline.config.model import Config, DestinationConfig
from pipeline.delivery.http import call_scope
from pipeline.errors import ConfigurationError, PermanentError, RetryableError
from pipeline.providers.base import DeliveryRef
from pipeline.providers.shared import shape
from pipeline.providers.slack.destination import DESTINATION, REDACTED_PATH, SlackOptions, message
from tests.support.contexts import destination_context
from tests.support.servers import free_port
from tests.support.stack import CONFIG, ThreadedServer, serve_sandbox

TOKEN = "XsandboxSecret01"  # the team-slack webhook's last part, 60-generic.toml
DELIVERY = DeliveryRef(
    id=1, action="team-slack.notify", verb="notify", idempotency_key="sw_" + "a" * 40, attempt=1
)


def purchase(**contact: Any) -> dict[str, Any]:
    return shape.event(
        "purchase.completed",
        key="sw-orders:ord_1",
        source="sw-orders",
        provider="standard_webhooks",
        occurred_at=1_772_366_400,
        contact=shape.contact(**{"email": "ada.lovelace@example.com", **contact}),
        purchase={
            "id": "ord_1",
            "amount": 4900,
            "currency": "eur",
            "items": [{"product": "generic-course-pro", "quantity": 1}],
        },
    )


def booking(starts_at: str, zone: str) -> dict[str, Any]:
    return shape.event(
        "booking.created",
        key="sw-orders:bk_1",
        source="sw-orders",
        provider="standard_webhooks",
        occurred_at=1_772_366_400,
        contact=shape.contact("grace.hopper@example.com"),
        booking={
            "id": "bk_1",
            "starts_at": starts_at,
            "timezone": zone,
            "event_name": "Coaching Call",
        },
    )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ThreadedServer, SandboxState]]:
    yield from serve_sandbox(5)


@pytest.fixture
def config(sandbox: tuple[ThreadedServer, SandboxState]) -> Config:
    server, state = sandbox
    state.reset()
    return load_config(CONFIG, {"SANDBOX_PORT": str(server.port)})


def notify(
    config: Config, event: dict[str, Any], destination: DestinationConfig | None = None
) -> dict[str, Any]:
    ctx = destination_context(destination or config.destinations["team-slack"], config)
    return DESTINATION.perform(ctx, DELIVERY, event)


# --- messages ----------------------------------------------------------------------------------


def test_a_purchase_names_the_buyer_the_product_and_the_amount(config: Config) -> None:
    text = message(config, purchase(first_name="Ada", last_name="Lovelace"))
    assert text == "New purchase: Ada Lovelace bought Pro Course for 49.00 EUR."
    assert "@" not in text


def test_without_a_name_the_address_is_masked_never_raw(config: Config) -> None:
    text = message(config, purchase())
    assert "a***@example.com" in text
    assert "ada.lovelace" not in text


def test_amounts_follow_the_currency_exponent(config: Config) -> None:
    event = purchase(first_name="Ada")
    event["purchase"] = {**event["purchase"], "amount": 1500, "currency": "jpy"}
    assert "for 1500 JPY." in message(config, event)


def test_a_name_cannot_ping_the_channel(config: Config) -> None:
    text = message(config, purchase(first_name="<!channel>", last_name="&"))
    assert "<!channel>" not in text
    assert "&lt;!channel&gt; &amp; bought" in text


def test_a_booking_shows_utc_and_the_attendees_own_zone(config: Config) -> None:
    winter = message(config, booking("2026-03-05T14:00:00Z", "Europe/Paris"))
    assert winter == (
        "New booking: g***@example.com booked Coaching Call for "
        "Thu 05 Mar 2026 14:00 UTC (Thu 05 Mar 2026 15:00 Europe/Paris)."
    )
    summer = message(config, booking("2026-07-01T14:00:00+00:00", "Europe/Paris"))
    assert "14:00 UTC (Wed 01 Jul 2026 16:00 Europe/Paris)" in summer  # the zone's rules, not +1


def test_an_unknown_zone_falls_back_to_utc_alone(config: Config) -> None:
    text = message(config, booking("2026-03-05T14:00:00Z", "Mars/Olympus_Mons"))
    assert text.endswith("for Thu 05 Mar 2026 14:00 UTC.")


def test_other_types_get_a_plain_line(config: Config) -> None:
    event = shape.event(
        "subscriber.added",
        key="x:1",
        source="sw-orders",
        provider="p",
        occurred_at=0,
        contact=shape.contact("bo@example.org"),
        subscriber={"tags": []},
    )
    assert message(config, event) == "subscriber.added from sw-orders: b***@example.org."


# --- options -----------------------------------------------------------------------------------


def test_a_slack_webhook_url_is_accepted_by_default() -> None:
    loaded = SlackOptions().load({"webhook_url": "https://hooks.slack.com/services/T01/B02/abc123"})
    assert loaded["allowed_origins"] == ["https://hooks.slack.com"]


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T01/B02/abc123",
        "https://evil.example/services/T01/B02/abc",
        "https://hooks.slack.com/workflows/T01/A02/123/abc",
    ],
)
def test_other_urls_are_refused_without_repeating_them(url: str) -> None:
    with pytest.raises(ValidationError) as raised:
        SlackOptions().load({"webhook_url": url})
    assert "webhook_url" in raised.value.messages
    assert "abc" not in str(raised.value.messages)  # the URL is a secret


# --- against the sandbox -----------------------------------------------------------------------


def posted(server: ThreadedServer) -> list[str]:
    answer = requests.get(f"{server.url}/_sandbox/slack/messages", timeout=5).json()
    texts: list[str] = answer["messages"].get(TOKEN, [])
    return texts


def test_a_notification_is_posted_and_the_secret_path_stays_out_of_the_trace(
    sandbox: tuple[ThreadedServer, SandboxState], config: Config
) -> None:
    server, _ = sandbox
    with call_scope() as scope:
        assert notify(config, purchase(first_name="Ada"))["posted"] is True
    assert posted(server) == ["New purchase: Ada bought Pro Course for 49.00 EUR."]
    assert [exchange.path for exchange in scope.exchanges] == [REDACTED_PATH]


@pytest.mark.parametrize(
    ("state", "status", "reason"),
    [("archived", 410, "slack_channel_is_archived"), ("revoked", 404, "slack_no_service")],
)
def test_a_gone_webhook_is_a_configuration_error(
    sandbox: tuple[ThreadedServer, SandboxState],
    config: Config,
    state: str,
    status: int,
    reason: str,
) -> None:
    server, _ = sandbox
    requests.post(f"{server.url}/_sandbox/slack/webhooks/{TOKEN}/{state}", timeout=5)
    with pytest.raises(ConfigurationError) as raised:
        notify(config, purchase())
    assert (raised.value.http_status, raised.value.reason) == (status, reason)
    requests.post(f"{server.url}/_sandbox/slack/webhooks/{TOKEN}/live", timeout=5)


def test_a_429_is_retried_after_slacks_delay(
    sandbox: tuple[ThreadedServer, SandboxState], config: Config
) -> None:
    _, state = sandbox
    state.faults["slack"] = Fault(status=429, retry_after=3)
    with pytest.raises(RetryableError) as raised:
        notify(config, purchase())
    assert (raised.value.http_status, raised.value.retry_after) == (429, 3.0)


def test_an_answer_other_than_ok_is_a_failure_even_with_200(
    sandbox: tuple[ThreadedServer, SandboxState], config: Config
) -> None:
    server, _ = sandbox
    # the sandbox's webhook sink answers 200 with JSON: not Slack's "ok"
    requests.put(f"{server.url}/_sandbox/webhook_sink/hooks/odd", json={"secret": None}, timeout=5)
    odd = with_url(config, f"{server.url}/webhook_sink/hooks/odd")
    with pytest.raises(PermanentError) as raised:
        notify(config, purchase(), odd)
    assert (raised.value.http_status, raised.value.reason) == (200, "slack_unexpected_answer")


def test_an_unreachable_slack_is_retried_and_the_url_never_reaches_the_trace(
    config: Config,
) -> None:
    dead = with_url(config, f"http://127.0.0.1:{free_port()}/services/T1/B1/{TOKEN}")
    with pytest.raises(RetryableError) as raised:
        notify(config, purchase(), dead)
    assert raised.value.reason == "connection_error"
    # what a dead letter would keep: the formatted exception chain
    assert TOKEN not in "".join(traceback.format_exception(raised.value))


def with_url(config: Config, url: str) -> DestinationConfig:
    """The team-slack destination pointed elsewhere (options built directly, unvalidated)."""
    return replace(config.destinations["team-slack"], options={"webhook_url": url})
