"""The generic HMAC source: options checked when the config loads, ids and types read where the
options say (or the body's hash when there is no id), and events received through the endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from pipeline.config.load import build_config, load_config
from pipeline.errors import BadPayload, ConfigError
from pipeline.log.db import create_db_engine
from pipeline.providers.generic_hmac.source import SOURCE
from pipeline.settings import Settings
from receivers.app import create_app
from tests.support.db import rows
from tests.support.fixtures import FIXTURES as FIXTURE_ROOT

FIXTURES = FIXTURE_ROOT / "generic"
GITHUB_SECRET = "generic-hmac-test-secret"  # hmac-github's, 60-generic.toml


def envelope(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def load(**options: Any) -> Any:
    raw = {"sources": {"app": {"provider": "generic_hmac", "signing_secrets": ["s"], **options}}}
    return build_config(raw, {}, Path("test.toml")).sources["app"]


# --- options -----------------------------------------------------------------------------------


def test_defaults_are_githubs_shape_without_the_prefix() -> None:
    assert dict(load(signature_header="X-Signature").options) == {
        "signature_header": "X-Signature",
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "",
        "signed": "body",
        "timestamp_header": None,
        "id_field": "id",
        "type_field": "type",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "sources.app.signature_header: Missing data for required field."),
        (
            {"signature_header": "X-Sig", "algorithm": "md5"},
            "sources.app.algorithm: Must be one of: sha1, sha256, sha512.",
        ),
        (
            {"signature_header": "X-Sig", "encoding": "base32"},
            "sources.app.encoding: Must be one of: hex, base64.",
        ),
        (
            {"signature_header": "X-Sig", "signed": "timestamp.body"},
            "sources.app.timestamp_header: signed = 'timestamp.body' needs the header that carries"
            " the timestamp.",
        ),
        (
            {"signature_header": "X-Sig", "timestamp_header": "X-Time"},
            "sources.app.timestamp_header: timestamp_header is read only when signed = 'timestamp.body'.",
        ),
        (
            {"signature_header": "X-Sig", "id_field": "meta..id"},
            "sources.app.id_field: A field path is dotted names, like 'id' or 'meta.event_id'.",
        ),
        (
            {"signature_header": "X Sig"},
            "sources.app.signature_header: A header name is letters, digits and '-'.",
        ),
        ({"signature_header": "X-Sig", "sigature": "typo"}, "sources.app.sigature: Unknown field."),
    ],
)
def test_bad_options_stop_the_config_with_one_clear_sentence(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(**options)
    assert str(raised.value) == message


# --- identity ----------------------------------------------------------------------------------


def test_the_id_and_type_are_read_at_their_dotted_paths() -> None:
    src = load(signature_header="X-Sig", id_field="meta.event_id", type_field="meta.event_type")
    payload = envelope("analytics.link_click.meta")
    found = SOURCE.identify_for(src, payload, b"{}", {})
    assert (found.external_id, found.provider_type) == ("evt-7c9e6679", "analytics.link_click")


def test_a_numeric_id_is_kept_as_text() -> None:
    src = load(signature_header="X-Sig")
    payload = {**envelope("analytics.page_view"), "id": 1234}
    assert SOURCE.identify_for(src, payload, b"{}", {}).external_id == "1234"


@pytest.mark.parametrize("id_value", [None, "", True, {"nested": 1}])
def test_without_an_id_the_body_hash_is_the_identity_and_says_so(id_value: Any) -> None:
    src = load(signature_header="X-Sig")
    payload = {**envelope("analytics.page_view"), "id": id_value}
    body = json.dumps(payload).encode()
    found = SOURCE.identify_for(src, payload, body, {})
    assert found.external_id == "body-sha256:" + hashlib.sha256(body).hexdigest()


def test_without_a_type_at_the_type_field_the_body_is_a_bad_payload() -> None:
    src = load(signature_header="X-Sig", type_field="meta.kind")
    with pytest.raises(BadPayload) as raised:
        SOURCE.identify_for(src, envelope("analytics.page_view"), b"{}", {})
    assert raised.value.code == "missing_event_type"


def test_an_analytics_event_runs_on_the_analytics_lane() -> None:
    assert SOURCE.lane_for("analytics.page_view") == "analytics"
    assert SOURCE.lane_for("pageview") is None


# --- through the receiver ----------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, clean: None) -> Iterator[FlaskClient]:
    app = create_app(
        settings, config=load_config(settings.config_path, settings.env), configure_logs=False
    )
    yield app.test_client()
    app.extensions["stackwire"].writer.close()


def github_post(client: FlaskClient, body: bytes, secret: str = GITHUB_SECRET) -> Any:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/hmac-github",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
    )


def stamped_post(client: FlaskClient, body: bytes) -> Any:
    now = str(int(time.time()))
    digest = hmac.new(b"stamped-hmac-test-secret", f"{now}.".encode() + body, hashlib.sha512)
    return client.post(
        "/webhooks/hmac-stamped",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Signature-Timestamp": now,
            "X-Signature": base64.b64encode(digest.digest()).decode(),
        },
    )


def test_both_configured_variants_receive_onto_the_analytics_lane(
    client: FlaskClient, settings: Settings
) -> None:
    assert (
        github_post(client, json.dumps(envelope("analytics.page_view")).encode()).status_code == 202
    )
    assert (
        stamped_post(client, json.dumps(envelope("analytics.link_click.meta")).encode()).status_code
        == 202
    )
    assert github_post(client, b'{"type":"analytics.x"}', secret="wrong").status_code == 401
    engine = create_db_engine(settings)
    found = rows(engine, "SELECT source, external_id, provider_type, lane FROM events ORDER BY id")
    engine.dispose()
    assert found == [
        {
            "source": "hmac-github",
            "external_id": "pv_01HQ7Z3K9D",
            "provider_type": "analytics.page_view",
            "lane": "analytics",
        },
        {
            "source": "hmac-stamped",
            "external_id": "evt-7c9e6679",
            "provider_type": "analytics.link_click",
            "lane": "analytics",
        },
    ]
