"""The one helper that decides what is retried, and the redaction every log and attempt row uses."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest
import requests

from pipeline.delivery.deadletter import trace_of
from pipeline.delivery.http import (
    REDACTED_PATH,
    ApiClient,
    build_session,
    call_scope,
    parse_retry_after,
    raise_for_answer,
    same_origin,
)
from pipeline.errors import ConfigurationError, PermanentError, RetryableError
from pipeline.logging import redact
from tests.support.servers import free_port


def response(status: int, **headers: str) -> requests.Response:
    made = requests.Response()
    made.status_code = status
    made.headers.update(headers)
    made._content = b"{}"
    return made


@pytest.mark.parametrize("status", [200, 201, 204])
def test_2xx_is_success(status: int) -> None:
    raise_for_answer(response(status), provider="x")


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_throttling_timeouts_and_server_errors_are_retried(status: int) -> None:
    with pytest.raises(RetryableError):
        raise_for_answer(response(status), provider="x")


@pytest.mark.parametrize("status", [301, 302, 400, 404, 410, 422])
def test_redirects_and_client_errors_are_never_retried(status: int) -> None:
    with pytest.raises(PermanentError) as raised:
        raise_for_answer(response(status), provider="x")
    assert not isinstance(raised.value, RetryableError)
    assert raised.value.http_status == status


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_a_configuration_problem(status: int) -> None:
    with pytest.raises(ConfigurationError) as raised:
        raise_for_answer(response(status), provider="x")
    assert raised.value.failure_class == "configuration"


def test_stripe_should_retry_overrides_the_status() -> None:
    with pytest.raises(RetryableError):
        raise_for_answer(response(400, **{"Stripe-Should-Retry": "true"}), provider="stripe")
    with pytest.raises(PermanentError) as raised:
        raise_for_answer(response(503, **{"Stripe-Should-Retry": "false"}), provider="stripe")
    assert not isinstance(raised.value, RetryableError)


def test_retry_after_is_carried_on_the_error() -> None:
    with pytest.raises(RetryableError) as raised:
        raise_for_answer(response(429, **{"Retry-After": "7"}), provider="x")
    assert raised.value.retry_after == 7.0


def test_retry_after_may_be_an_http_date() -> None:
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_redact_masks_addresses_and_keys() -> None:
    text = "ada.lovelace+vip@example.com used sk_live_abcdefghijkl and whsec_1234567890"
    assert redact(text) == "[email] used [secret] and [secret]"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.calendly.com/scheduled_events/X", True),
        ("http://api.calendly.com/scheduled_events/X", False),
        ("https://api.calendly.com.evil.test/x", False),
        ("https://evil.test/?https://api.calendly.com", False),
    ],
)
def test_a_payload_url_is_followed_only_to_the_configured_origin(url: str, expected: bool) -> None:
    assert same_origin(url, "https://api.calendly.com") is expected


def unreachable(path: str = "", **options: Any) -> ApiClient:
    return ApiClient(
        provider="ga4",
        base_url=f"http://127.0.0.1:{free_port()}{path}",
        session=build_session(),
        timeout=2.0,
        **options,
    )


def test_a_transport_error_keeps_the_query_and_its_secret_out_of_the_trace() -> None:
    # urllib3's own text names the URL, query and all: GA4's api_secret rides in the query
    client = unreachable()
    with pytest.raises(RetryableError) as raised:
        client.request(
            "POST", "/mp/collect", params={"measurement_id": "G-1", "api_secret": "Zx9QwErTy"}
        )
    trace = trace_of(raised.value)  # what a dead letter keeps
    assert raised.value.reason == "connection_error"
    assert "TransportError: ConnectionError" in trace and "/mp/collect?[redacted]" in trace
    assert "Zx9QwErTy" not in trace and "measurement_id" not in trace


def test_a_secret_path_is_shown_redacted_in_the_attempt_and_the_trace() -> None:
    # a Zapier or Make hook URL is its own secret
    client = unreachable("/hooks/catch/123/s3cr3tHookPath", shown_path=REDACTED_PATH)
    with call_scope() as scope, pytest.raises(RetryableError) as raised:
        client.request("POST", "", data=b"{}")
    assert [e.request_line for e in scope.exchanges] == ["POST /[redacted]"]
    assert "s3cr3tHookPath" not in trace_of(raised.value)
