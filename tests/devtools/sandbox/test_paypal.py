"""The PayPal emulator: OAuth client credentials, Bearer tokens, PayPal's error bodies, real signatures.

Signatures are checked here independently of `pipeline.signatures`: the certificate is downloaded from
the cert URL the webhook names and the message is rebuilt from PayPal's description with `zlib`.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask.testing import FlaskClient

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.state import SandboxState
from tests.support.web import json_of

WEBHOOK_ID = "8PT597110X687430LKGECATA"
SECRET = "secret-1"
VERIFY = "/paypal/v1/notifications/verify-webhook-signature"


@pytest.fixture
def client() -> FlaskClient:
    return create_sandbox_app(SandboxState(seed=1)).test_client()


def basic(client_id: str = "client-1", secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def token(client: FlaskClient, client_id: str = "client-1") -> dict[str, str]:
    answer = client.post(
        "/paypal/v1/oauth2/token",
        headers=basic(client_id),
        data={"grant_type": "client_credentials"},
    )
    assert answer.status_code == 200, answer.json
    return {"Authorization": f"Bearer {json_of(answer)['access_token']}"}


def control(client: FlaskClient, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = client.post(f"/_sandbox/paypal/{path}", json=body or {})
    assert answer.status_code == 200, answer.json
    found: dict[str, Any] = json_of(answer)
    return found


def purchase(client: FlaskClient, **spec: Any) -> dict[str, Any]:
    return control(
        client,
        "purchases",
        {"email": "ada@example.com", "name": "Ada Lovelace", "webhook_id": WEBHOOK_ID, **spec},
    )


def postback(webhook: dict[str, Any], **changes: Any) -> dict[str, Any]:
    headers = webhook["headers"]
    request = {
        "auth_algo": headers["PAYPAL-AUTH-ALGO"],
        "cert_url": headers["PAYPAL-CERT-URL"],
        "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
        "transmission_sig": headers["PAYPAL-TRANSMISSION-SIG"],
        "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"],
        "webhook_id": WEBHOOK_ID,
        "webhook_event": json.loads(webhook["body"]),
    }
    request.update(changes)
    return {k: v for k, v in request.items() if v is not None}


def verify(client: FlaskClient, request: dict[str, Any]) -> Any:
    return client.post(VERIFY, json=request, headers=token(client))


# -- OAuth ----------------------------------------------------------------------------------------


def test_client_credentials_get_a_bearer_token_shaped_like_paypals(client: FlaskClient) -> None:
    answer = client.post(
        "/paypal/v1/oauth2/token", headers=basic(), data={"grant_type": "client_credentials"}
    )
    assert answer.status_code == 200
    assert set(json_of(answer)) == {
        "scope",
        "access_token",
        "token_type",
        "app_id",
        "expires_in",
        "nonce",
    }
    assert json_of(answer)["token_type"] == "Bearer"
    assert json_of(answer)["expires_in"] == 32400


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic !!!"}, basic(secret=""), {"Authorization": "Bearer abc"}],
)
def test_missing_or_bad_client_credentials_are_401_invalid_client(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    answer = client.post(
        "/paypal/v1/oauth2/token", headers=headers, data={"grant_type": "client_credentials"}
    )
    assert answer.status_code == 401
    assert answer.json == {
        "error": "invalid_client",
        "error_description": "Client Authentication failed",
    }


def test_a_token_request_without_the_grant_type_is_400(client: FlaskClient) -> None:
    answer = client.post("/paypal/v1/oauth2/token", headers=basic(), data={})
    assert answer.status_code == 400
    assert json_of(answer)["error"] == "unsupported_grant_type"


def test_the_rest_api_wants_a_token_the_sandbox_issued(client: FlaskClient) -> None:
    webhook = purchase(client)
    path = f"/paypal/v2/payments/captures/{webhook['capture']}"
    for headers in ({}, {"Authorization": "Bearer made-up"}, basic()):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 401
        assert json_of(answer)["name"] == "AUTHENTICATION_FAILURE"
        assert {"name", "message", "debug_id", "details", "links"} <= set(json_of(answer))
    assert client.get(path, headers=token(client)).status_code == 200


def test_revoking_a_client_voids_its_tokens_and_refuses_new_ones(client: FlaskClient) -> None:
    bearer = token(client, "client-9")
    control(client, "clients/client-9/revoke")
    assert client.post(VERIFY, json={}, headers=bearer).status_code == 401
    answer = client.post(
        "/paypal/v1/oauth2/token",
        headers=basic("client-9"),
        data={"grant_type": "client_credentials"},
    )
    assert answer.status_code == 401


# -- verify-webhook-signature ---------------------------------------------------------------------


def test_the_webhook_is_signed_sha256withrsa_over_paypals_message(client: FlaskClient) -> None:
    webhook = purchase(client)
    headers = webhook["headers"]
    cert_path = headers["PAYPAL-CERT-URL"].split("localhost", 1)[1]
    certificate = x509.load_pem_x509_certificate(client.get(cert_path).data)
    message = "|".join(
        [
            headers["PAYPAL-TRANSMISSION-ID"],
            headers["PAYPAL-TRANSMISSION-TIME"],
            WEBHOOK_ID,
            str(zlib.crc32(webhook["body"].encode())),
        ]
    )
    signature = base64.b64decode(headers["PAYPAL-TRANSMISSION-SIG"])
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    # raises InvalidSignature unless the sandbox signed exactly this message
    public_key.verify(signature, message.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert headers["PAYPAL-AUTH-ALGO"] == "SHA256withRSA"


def test_an_untouched_event_verifies(client: FlaskClient) -> None:
    answer = verify(client, postback(purchase(client)))
    assert answer.status_code == 200
    assert answer.json == {"verification_status": "SUCCESS"}


def tampered(webhook: dict[str, Any]) -> dict[str, Any]:
    event = json.loads(webhook["body"])
    event["resource"]["amount"]["value"] = "0.01"
    return event


@pytest.mark.parametrize(
    "change",
    [
        lambda w: {"webhook_event": tampered(w)},
        lambda w: {"webhook_id": "9XL90610J3647323C"},
        lambda w: {"transmission_id": "69cd13f0-d67a-11e5-baa3-778b53f4ae55"},
        lambda w: {"transmission_time": "2016-02-18T20:01:35Z"},
        lambda w: {"auth_algo": "SHA1withRSA"},
        lambda w: {"cert_url": "https://api.paypal.com/v1/notifications/certs/CERT-unknown"},
        lambda w: {"transmission_sig": base64.b64encode(b"x" * 256).decode()},
    ],
)
def test_anything_changed_after_signing_is_failure_with_http_200(
    client: FlaskClient, change: Any
) -> None:
    webhook = purchase(client)
    answer = verify(client, postback(webhook, **change(webhook)))
    assert answer.status_code == 200
    assert answer.json == {"verification_status": "FAILURE"}


def test_another_events_signature_does_not_verify_this_one(client: FlaskClient) -> None:
    first, second = purchase(client), purchase(client)
    request = postback(first, webhook_event=json.loads(second["body"]))
    assert verify(client, request).json == {"verification_status": "FAILURE"}


@pytest.mark.parametrize(
    "change,field,issue",
    [
        ({"webhook_id": None}, "/webhook_id", "MISSING_REQUIRED_PARAMETER"),
        ({"webhook_id": "WH-has-dashes"}, "/webhook_id", "INVALID_PARAMETER_SYNTAX"),
        ({"auth_algo": "SHA256-RSA"}, "/auth_algo", "INVALID_PARAMETER_SYNTAX"),
        ({"transmission_id": "x" * 51}, "/transmission_id", "INVALID_STRING_MAX_LENGTH"),
        ({"transmission_time": "yesterday"}, "/transmission_time", "INVALID_PARAMETER_SYNTAX"),
        ({"transmission_sig": 12}, "/transmission_sig", "INVALID_PARAMETER_SYNTAX"),
        ({"webhook_event": None}, "/webhook_event", "MISSING_REQUIRED_PARAMETER"),
    ],
)
def test_bad_input_is_400_with_paypals_validation_error_body(
    client: FlaskClient, change: dict[str, Any], field: str, issue: str
) -> None:
    answer = verify(client, postback(purchase(client), **change))
    assert answer.status_code == 400
    assert json_of(answer)["name"] == "VALIDATION_ERROR"
    assert {"name", "message", "debug_id", "information_link", "details", "links"} <= set(
        answer.json
    )
    [detail] = json_of(answer)["details"]
    assert (detail["field"], detail["location"], detail["issue"]) == (field, "body", issue)


def test_a_body_that_is_not_json_is_400_invalid_request(client: FlaskClient) -> None:
    answer = client.post(
        VERIFY, data=b"{nope", headers={**token(client), "Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert json_of(answer)["name"] == "INVALID_REQUEST"


def test_a_resend_is_the_same_body_in_a_new_transmission_that_verifies(client: FlaskClient) -> None:
    webhook = purchase(client)
    again = control(client, f"events/{webhook['event_id']}/resend", {"webhook_id": WEBHOOK_ID})
    assert again["body"] == webhook["body"]
    assert (
        again["headers"]["PAYPAL-TRANSMISSION-ID"] != webhook["headers"]["PAYPAL-TRANSMISSION-ID"]
    )
    assert verify(client, postback(again)).json == {"verification_status": "SUCCESS"}


# -- the objects ----------------------------------------------------------------------------------


def get(client: FlaskClient, path: str) -> dict[str, Any]:
    answer = client.get(f"/paypal{path}", headers=token(client))
    assert answer.status_code == 200, answer.json
    found: dict[str, Any] = json_of(answer)
    return found


def test_a_purchase_makes_an_order_and_a_capture_that_point_at_each_other(
    client: FlaskClient,
) -> None:
    webhook = purchase(client, sku="paypal-course", amount="21.12", invoice_id="INV-7")
    capture = get(client, f"/v2/payments/captures/{webhook['capture']}")
    order = get(client, f"/v2/checkout/orders/{webhook['order']}")
    event = json.loads(webhook["body"])
    assert event["event_type"] == "PAYMENT.CAPTURE.COMPLETED"
    assert event["resource"] == capture
    assert capture["supplementary_data"]["related_ids"]["order_id"] == order["id"]
    assert capture["amount"] == {"currency_code": "USD", "value": "21.12"}
    assert capture["invoice_id"] == "INV-7"
    [unit] = order["purchase_units"]
    assert unit["items"][0]["sku"] == "paypal-course"
    assert unit["payments"]["captures"][0]["id"] == capture["id"]
    assert order["payment_source"]["paypal"]["email_address"] == "ada@example.com"


@pytest.mark.parametrize(
    "currency,amount,value",
    [("JPY", "1500", "1500"), ("KWD", "1.25", "1.250"), ("USD", "7", "7.00")],
)
def test_amounts_carry_exactly_the_currencys_decimals(
    client: FlaskClient, currency: str, amount: str, value: str
) -> None:
    webhook = purchase(client, currency=currency, amount=amount)
    capture = get(client, f"/v2/payments/captures/{webhook['capture']}")
    assert capture["amount"] == {"currency_code": currency, "value": value}


def test_a_full_refund_marks_the_capture_refunded_and_its_up_link_names_it(
    client: FlaskClient,
) -> None:
    webhook = purchase(client)
    refunded = control(client, f"captures/{webhook['capture']}/refund", {"webhook_id": WEBHOOK_ID})
    refund = get(client, f"/v2/payments/refunds/{refunded['refund']}")
    assert json.loads(refunded["body"])["resource"] == refund
    assert json.loads(refunded["body"])["resource_type"] == "refund"
    up = next(link["href"] for link in refund["links"] if link["rel"] == "up")
    assert up.endswith(f"/paypal/v2/payments/captures/{webhook['capture']}")
    assert get(client, f"/v2/payments/captures/{webhook['capture']}")["status"] == "REFUNDED"
    assert verify(client, postback(refunded)).json == {"verification_status": "SUCCESS"}


def test_a_partial_refund_leaves_the_capture_partially_refunded(client: FlaskClient) -> None:
    webhook = purchase(client, amount="20.00")
    control(client, f"captures/{webhook['capture']}/refund", {"amount": "5.00"})
    assert (
        get(client, f"/v2/payments/captures/{webhook['capture']}")["status"] == "PARTIALLY_REFUNDED"
    )


def test_an_unknown_object_is_404_resource_not_found(client: FlaskClient) -> None:
    answer = client.get("/paypal/v2/payments/captures/0000000000000000X", headers=token(client))
    assert answer.status_code == 404
    assert json_of(answer)["name"] == "RESOURCE_NOT_FOUND"
    assert json_of(answer)["details"][0]["issue"] == "INVALID_RESOURCE_ID"
