"""PayPal at the edge: the webhook URL's secret (`?key=`) first, then the transmission headers: all
five present and well formed, a fresh transmission time (both directions), a certificate URL on a
trusted host. Authenticity itself is the verify task's postback
(tests/unit/pipeline/providers/test_paypal.py); here nothing reaches PayPal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient

from pipeline.config.load import load_config
from pipeline.config.model import SourceConfig
from pipeline.errors import SignatureError
from pipeline.log.db import create_db_engine
from pipeline.providers.paypal.source import SOURCE as PAYPAL_SOURCE
from pipeline.settings import Settings
from pipeline.signatures.base import SignedRequest, Verified
from receivers.app import create_app
from tests.support.contexts import received_headers, source_config
from tests.support.db import rows, scalar
from tests.support.fixtures import FIXTURES
from tests.support.web import json_of

BODY = (FIXTURES / "paypal" / "PAYMENT.CAPTURE.COMPLETED.json").read_bytes()
NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z
SENT = "2026-09-21T14:13:20Z"
CERT = "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-7a8abba8"
SIG = "eDOnWUj9FXOnr2naQnrdL7bhgejVSTwRbwbJ0kuk5wAtm2ZYkr7w5BSUDO7e5ZOsqLwN3sPn3RV85Jd9pjHuTlpuXDLY"
URL_SECRET = "paypal-url-secret-3c9d1e"  # tests/fixtures/config/20-paypal.toml


def source(api_base: str = "https://api-m.paypal.com", **options: Any) -> SourceConfig:
    return source_config(
        PAYPAL_SOURCE,
        signing_secrets=("an-old-url-secret", URL_SECRET),
        api_base=api_base,
        max_body_bytes=262144,
        options={
            "client_id": "c",
            "client_secret": "s",
            "webhook_id": "8PT597110X687430LKGECATA",
            "cert_hosts": [],
            **options,
        },
    )


def transmission(**changes: str | None) -> dict[str, str]:
    headers = {
        "PAYPAL-TRANSMISSION-ID": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
        "PAYPAL-TRANSMISSION-TIME": SENT,
        "PAYPAL-TRANSMISSION-SIG": SIG,
        "PAYPAL-CERT-URL": CERT,
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }
    headers.update({k: v for k, v in changes.items() if v is not None})
    return {k: v for k, v in headers.items() if changes.get(k, "") is not None}


def check(
    headers: dict[str, str],
    *,
    config: SourceConfig | None = None,
    now: float = NOW,
    query: dict[str, str] | None = None,
) -> Verified:
    given = {"key": URL_SECRET} if query is None else query
    request = SignedRequest(BODY, received_headers(headers), given, now)
    return PAYPAL_SOURCE.signature.verify(config or source(), request)


def refused(headers: dict[str, str], **kwargs: Any) -> str:
    with pytest.raises(SignatureError) as raised:
        check(headers, **kwargs)
    return raised.value.code


def test_a_well_formed_fresh_transmission_passes_the_edge_naming_the_url_secret() -> None:
    assert check(transmission()) == Verified(secret_index=1)


@pytest.mark.parametrize(
    ("query", "code"), [({}, "missing_signature"), ({"key": "guessed"}, "bad_signature")]
)
def test_without_the_url_secret_even_a_genuine_transmission_is_refused(
    query: dict[str, str], code: str
) -> None:
    # anyone can make well-formed PayPal headers: without the URL secret nothing is stored
    assert refused(transmission(), query=query) == code


def test_header_names_are_case_insensitive_as_paypal_sends_them() -> None:
    assert check({k.title(): v for k, v in transmission().items()}) == Verified(secret_index=1)


@pytest.mark.parametrize(
    "missing",
    [
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-TIME",
        "PAYPAL-TRANSMISSION-SIG",
        "PAYPAL-CERT-URL",
        "PAYPAL-AUTH-ALGO",
    ],
)
def test_each_missing_header_is_refused(missing: str) -> None:
    assert refused(transmission(**{missing: None})) == "missing_signature"


@pytest.mark.parametrize(
    "header,value",
    [
        ("PAYPAL-TRANSMISSION-ID", "has spaces in it"),
        ("PAYPAL-TRANSMISSION-ID", "x" * 51),
        ("PAYPAL-TRANSMISSION-SIG", "not base64 at all!"),
        ("PAYPAL-TRANSMISSION-SIG", "A" * 501),
        ("PAYPAL-AUTH-ALGO", "SHA256-with-RSA"),
        ("PAYPAL-TRANSMISSION-TIME", "1790000000"),
        ("PAYPAL-TRANSMISSION-TIME", "2026-09-21 14:13:20"),
        ("PAYPAL-TRANSMISSION-TIME", "2026-09-21T14:13:20"),  # no offset: which instant?
        ("PAYPAL-TRANSMISSION-TIME", "2026-02-30T14:13:20Z"),
    ],
)
def test_malformed_headers_are_refused(header: str, value: str) -> None:
    assert refused(transmission(**{header: value})) == "malformed_signature"


@pytest.mark.parametrize(
    "sent", ["2026-09-21T14:07:19Z", "2026-09-21T14:19:21Z", "2026-09-21T16:19:21+02:00"]
)
def test_a_transmission_time_outside_the_tolerance_is_refused_both_ways(sent: str) -> None:
    assert refused(transmission(**{"PAYPAL-TRANSMISSION-TIME": sent})) == "stale_timestamp"


@pytest.mark.parametrize(
    "sent", ["2026-09-21T14:08:21Z", "2026-09-21T14:18:19.123456789Z", "2026-09-21T16:13:20+02:00"]
)
def test_a_transmission_time_inside_the_tolerance_in_any_offset_passes(sent: str) -> None:
    assert check(transmission(**{"PAYPAL-TRANSMISSION-TIME": sent})).secret_index == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://api.paypal.com/v1/notifications/certs/CERT-1",  # not https
        "https://evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com@evil.example/v1/notifications/certs/CERT-1",
        "https://evil.example@api.paypal.com/v1/notifications/certs/CERT-1",  # credentials in a URL
        "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",  # the sandbox's, for a live source
        "https://api.paypal.com:port/v1/notifications/certs/CERT-1",
        "ftp://api.paypal.com/CERT-1",
        "https://api.paypal.com/" + "c" * 500,
    ],
)
def test_a_cert_url_off_the_trusted_hosts_is_refused(url: str) -> None:
    assert refused(transmission(**{"PAYPAL-CERT-URL": url})) == "untrusted_cert_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.paypal.com/v1/notifications/certs/CERT-1",  # where PayPal serves live certs
        "https://api-m.paypal.com/v1/notifications/certs/CERT-1",  # the api_base itself
        "https://API.PAYPAL.COM:443/v1/notifications/certs/CERT-1",
    ],
)
def test_a_cert_url_on_the_api_host_or_its_certificate_twin_passes(url: str) -> None:
    assert check(transmission(**{"PAYPAL-CERT-URL": url})).secret_index == 1


def test_the_sandbox_api_base_trusts_the_sandbox_certificate_host() -> None:
    config = source("https://api-m.sandbox.paypal.com")
    url = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"
    assert check(transmission(**{"PAYPAL-CERT-URL": url}), config=config).secret_index == 1
    assert refused(transmission(), config=config) == "untrusted_cert_url"  # the live host


def test_cert_hosts_adds_hosts_and_ports() -> None:
    config = source(cert_hosts=["certs.example.net", "certs.example.org:8443"])
    for url in ("https://certs.example.net/c", "https://certs.example.org:8443/c"):
        assert check(transmission(**{"PAYPAL-CERT-URL": url}), config=config).secret_index == 1
    assert (
        refused(transmission(**{"PAYPAL-CERT-URL": "https://certs.example.org/c"}), config=config)
        == "untrusted_cert_url"
    )


def test_plain_http_is_allowed_only_when_the_api_itself_is_http() -> None:
    local = source("http://127.0.0.1:8100/paypal")
    url = "http://127.0.0.1:8100/paypal/v1/notifications/certs/CERT-1"
    assert check(transmission(**{"PAYPAL-CERT-URL": url}), config=local).secret_index == 1
    other_port = "http://127.0.0.1:8101/paypal/v1/notifications/certs/CERT-1"
    assert (
        refused(transmission(**{"PAYPAL-CERT-URL": other_port}), config=local)
        == "untrusted_cert_url"
    )
    assert refused(transmission(**{"PAYPAL-CERT-URL": url})) == "untrusted_cert_url"


# -- at the receiver ------------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, clean: None) -> Iterator[FlaskClient]:
    app = create_app(
        settings, config=load_config(settings.config_path, settings.env), configure_logs=False
    )
    yield app.test_client()
    app.extensions["stackwire"].writer.close()


def test_the_receiver_stores_the_transmission_headers_and_answers_202(
    client: FlaskClient, settings: Settings
) -> None:
    sent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    # the test config points the source at the sandbox, http://127.0.0.1:1/paypal
    cert = "http://127.0.0.1:1/paypal/v1/notifications/certs/CERT-360caa42-1"
    headers = {
        **transmission(**{"PAYPAL-TRANSMISSION-TIME": sent, "PAYPAL-CERT-URL": cert}),
        "Content-Type": "application/json",
    }
    response = client.post(f"/webhooks/paypal?key={URL_SECRET}", data=BODY, headers=headers)
    assert response.status_code == 202, response.json
    engine = create_db_engine(settings)
    [event] = rows(
        engine, "SELECT external_id, provider_type, lane, headers, secret_index FROM events"
    )
    engine.dispose()
    assert event["external_id"] == "WH-58D329510W468432D-8HN650336L201105X"
    assert (event["provider_type"], event["lane"]) == ("PAYMENT.CAPTURE.COMPLETED", "payments")
    assert event["secret_index"] == 0  # the URL secret that matched
    for name in (
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-TIME",
        "PAYPAL-TRANSMISSION-SIG",
        "PAYPAL-CERT-URL",
        "PAYPAL-AUTH-ALGO",
    ):
        assert event["headers"][name] == headers[name]


def test_the_receiver_refuses_a_foreign_cert_host_with_401_and_stores_nothing(
    client: FlaskClient, settings: Settings
) -> None:
    sent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    headers = {
        **transmission(**{"PAYPAL-TRANSMISSION-TIME": sent}),
        "Content-Type": "application/json",
    }
    response = client.post(f"/webhooks/paypal?key={URL_SECRET}", data=BODY, headers=headers)
    assert response.status_code == 401
    assert json_of(response)["error"]["code"] == "untrusted_cert_url"
    engine = create_db_engine(settings)
    assert scalar(engine, "SELECT count(*) FROM events") == 0
    engine.dispose()


def fresh_transmission() -> dict[str, str]:
    sent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cert = "http://127.0.0.1:1/paypal/v1/notifications/certs/CERT-360caa42-1"
    return {
        **transmission(**{"PAYPAL-TRANSMISSION-TIME": sent, "PAYPAL-CERT-URL": cert}),
        "Content-Type": "application/json",
    }


@pytest.mark.parametrize("query", ["", "?key=guessed"])
def test_a_genuine_looking_transmission_without_the_url_secret_stores_nothing(
    client: FlaskClient, settings: Settings, query: str
) -> None:
    # well-formed PayPal headers are no proof: without the secret no row, no postback later
    response = client.post(f"/webhooks/paypal{query}", data=BODY, headers=fresh_transmission())
    assert response.status_code == 401
    assert json_of(response)["error"]["code"] in ("missing_signature", "bad_signature")
    engine = create_db_engine(settings)
    assert scalar(engine, "SELECT count(*) FROM events") == 0
    engine.dispose()


def test_events_awaiting_verification_past_the_source_limit_are_told_to_retry(
    settings: Settings, clean: None
) -> None:
    # Given a PayPal source that may add 2 unverified events at once, then 1 a minute
    config = load_config(settings.config_path, settings.env)
    limited = replace(config.sources["paypal"], unverified_rate_limit=1 / 60, unverified_burst=2)
    config = replace(config, sources={**config.sources, "paypal": limited})
    app = create_app(settings, config=config, configure_logs=False)
    client = app.test_client()
    url = f"/webhooks/paypal?key={URL_SECRET}"

    # When three transmissions arrive at once
    answers = [client.post(url, data=body, headers=fresh_transmission()) for body in bodies(3)]

    # Then two are stored and the third is answered 429 with Retry-After, and not stored
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert json_of(answers[2])["error"]["code"] == "rate_limited"
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    engine = create_db_engine(settings)
    assert scalar(engine, "SELECT count(*) FROM events") == 2
    engine.dispose()
    app.extensions["stackwire"].writer.close()


def bodies(count: int) -> list[bytes]:
    """`count` PayPal capture events, each its own id."""
    event = json.loads(BODY)
    return [json.dumps({**event, "id": f"WH-{n}-8HN650336L201105X"}).encode() for n in range(count)]
