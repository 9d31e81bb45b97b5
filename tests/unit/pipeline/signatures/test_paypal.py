"""PayPal's transmission headers at the edge: all five present and well formed, a fresh transmission
time (both directions), a certificate URL on a trusted host. Authenticity itself is the verify
task's postback (tests/unit/pipeline/providers/test_paypal.py); here nothing reaches PayPal.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
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


def source(api_base: str = "https://api-m.paypal.com", **options: Any) -> SourceConfig:
    return source_config(
        PAYPAL_SOURCE,
        signing_secrets=(),
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
    headers: dict[str, str], *, config: SourceConfig | None = None, now: float = NOW
) -> Verified:
    request = SignedRequest(BODY, received_headers(headers), {}, now)
    return PAYPAL_SOURCE.signature.verify(config or source(), request)


def refused(headers: dict[str, str], **kwargs: Any) -> str:
    with pytest.raises(SignatureError) as raised:
        check(headers, **kwargs)
    return raised.value.code


def test_a_well_formed_fresh_transmission_passes_the_edge_with_no_secret_index() -> None:
    assert check(transmission()) == Verified(secret_index=None)


def test_header_names_are_case_insensitive_as_paypal_sends_them() -> None:
    assert check({k.title(): v for k, v in transmission().items()}) == Verified(secret_index=None)


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
    assert check(transmission(**{"PAYPAL-TRANSMISSION-TIME": sent})).secret_index is None


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
    assert check(transmission(**{"PAYPAL-CERT-URL": url})).secret_index is None


def test_the_sandbox_api_base_trusts_the_sandbox_certificate_host() -> None:
    config = source("https://api-m.sandbox.paypal.com")
    url = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"
    assert check(transmission(**{"PAYPAL-CERT-URL": url}), config=config).secret_index is None
    assert refused(transmission(), config=config) == "untrusted_cert_url"  # the live host


def test_cert_hosts_adds_hosts_and_ports() -> None:
    config = source(cert_hosts=["certs.example.net", "certs.example.org:8443"])
    for url in ("https://certs.example.net/c", "https://certs.example.org:8443/c"):
        assert check(transmission(**{"PAYPAL-CERT-URL": url}), config=config).secret_index is None
    assert (
        refused(transmission(**{"PAYPAL-CERT-URL": "https://certs.example.org/c"}), config=config)
        == "untrusted_cert_url"
    )


def test_plain_http_is_allowed_only_when_the_api_itself_is_http() -> None:
    local = source("http://127.0.0.1:8100/paypal")
    url = "http://127.0.0.1:8100/paypal/v1/notifications/certs/CERT-1"
    assert check(transmission(**{"PAYPAL-CERT-URL": url}), config=local).secret_index is None
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
    response = client.post("/webhooks/paypal", data=BODY, headers=headers)
    assert response.status_code == 202, response.json
    engine = create_db_engine(settings)
    [event] = rows(
        engine, "SELECT external_id, provider_type, lane, headers, secret_index FROM events"
    )
    engine.dispose()
    assert event["external_id"] == "WH-58D329510W468432D-8HN650336L201105X"
    assert (event["provider_type"], event["lane"]) == ("PAYMENT.CAPTURE.COMPLETED", "payments")
    assert event["secret_index"] is None
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
    response = client.post("/webhooks/paypal", data=BODY, headers=headers)
    assert response.status_code == 401
    assert json_of(response)["error"]["code"] == "untrusted_cert_url"
    engine = create_db_engine(settings)
    assert scalar(engine, "SELECT count(*) FROM events") == 0
    engine.dispose()
