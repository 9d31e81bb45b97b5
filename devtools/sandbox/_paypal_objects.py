"""The sandbox PayPal's objects, field for field like PayPal's own samples: orders (Orders v2
`orders-get`), captures and refunds (Payments v2 `captures-get`, `refunds-get`), money objects.

Pure builders (no Flask): `devtools.sandbox.paypal` stores what they return and serves it.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from schemas.canonical import currency_exponent

ID_ALPHABET = string.ascii_uppercase + string.digits
PAYER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # PayPal account ids: ^[2-9A-HJ-NP-Z]{13}$
PAYEE = {"email_address": "creator@example.com", "merchant_id": "C7CYMKZDG8D6E"}
FEE_RATE = Decimal("0.0349")
# the subject PayPal's own certificates carry (PayPal-Java-SDK SSLUtil.validateCertificateChain)
SIGNER_NAME = "messageverificationcerts.sandbox.paypal.com"


def new_signer() -> dict[str, Any]:
    """A fresh RSA-2048 key and a self-signed certificate named like PayPal's signing certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SIGNER_NAME)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "cert_id": f"CERT-360caa42-{secrets.token_hex(4)}-{secrets.token_hex(4)}",
        "key_pem": key_pem,
        "cert_pem": cert.public_bytes(serialization.Encoding.PEM),
    }


def new_id(length: int = 17, alphabet: str = ID_ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def money(value: Decimal, currency: str) -> dict[str, str]:
    """PayPal money: the value as a string with exactly the currency's decimals ("1500", "1.250")."""
    return {"currency_code": currency, "value": f"{value:.{currency_exponent(currency)}f}"}


def link(href: str, rel: str, method: str = "GET") -> dict[str, str]:
    return {"href": href, "rel": rel, "method": method}


def items_from(spec: dict[str, Any], currency: str) -> list[dict[str, Any]]:
    """The order's line items: `spec["items"]` as given, or one item from sku/amount/product_name."""
    if spec.get("items"):
        return list(spec["items"])
    return [
        {
            "name": spec.get("product_name", "Creator Course"),
            "sku": spec.get("sku", "paypal-course"),
            "unit_amount": {"currency_code": currency, "value": spec.get("amount", "21.12")},
            "quantity": "1",
            "category": "DIGITAL_GOODS",
        }
    ]


def total_of(items: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(i["unit_amount"]["value"]) * int(i["quantity"]) for i in items), Decimal(0))


def capture(
    ids: dict[str, str],
    total: Decimal,
    *,
    currency: str,
    status: str,
    references: dict[str, str],
    base: str,
    now: str,
) -> dict[str, Any]:
    fee = (total * FEE_RATE).quantize(Decimal(1).scaleb(-currency_exponent(currency)))
    found: dict[str, Any] = {
        "id": ids["capture"],
        "status": status,
        "amount": money(total, currency),
    }
    if status == "PENDING":
        found["status_details"] = {"reason": "PENDING_REVIEW"}
    found.update(
        {
            "final_capture": True,
            "seller_protection": {
                "status": "ELIGIBLE",
                "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
            },
            "seller_receivable_breakdown": {
                "gross_amount": money(total, currency),
                "paypal_fee": money(fee, currency),
                "net_amount": money(total - fee, currency),
            },
            **references,
            "supplementary_data": {"related_ids": {"order_id": ids["order"]}},
            "payee": PAYEE,
            "create_time": now,
            "update_time": now,
            "links": [
                link(f"{base}/v2/payments/captures/{ids['capture']}", "self"),
                link(f"{base}/v2/payments/captures/{ids['capture']}/refund", "refund", "POST"),
                link(f"{base}/v2/checkout/orders/{ids['order']}", "up"),
            ],
        }
    )
    return found


def order(
    ids: dict[str, str],
    spec: dict[str, Any],
    *,
    items: list[dict[str, Any]],
    paid: dict[str, Any],
    references: dict[str, str],
    base: str,
    now: str,
) -> dict[str, Any]:
    """A captured order: the payer's wallet, one purchase unit holding the items and the capture."""
    given, _, surname = str(spec.get("name", "Ada Lovelace")).partition(" ")
    name = {"given_name": given, "surname": surname or "Buyer"}
    email, amount = spec.get("email", "buyer@example.com"), paid["amount"]
    return {
        "id": ids["order"],
        "intent": "CAPTURE",
        "status": "COMPLETED",
        "payment_source": {
            "paypal": {
                "email_address": email,
                "account_id": ids["payer"],
                "account_status": "VERIFIED",
                "name": name,
                "address": {"country_code": "US"},
            }
        },
        "purchase_units": [
            {
                "reference_id": spec.get("reference_id", "default"),
                "amount": {**amount, "breakdown": {"item_total": dict(amount)}},
                "payee": PAYEE,
                **references,
                "items": items,
                "payments": {"captures": [paid]},
            }
        ],
        "payer": {
            "name": name,
            "email_address": email,
            "payer_id": ids["payer"],
            "address": {"country_code": "US"},
        },
        "create_time": now,
        "update_time": now,
        "links": [link(f"{base}/v2/checkout/orders/{ids['order']}", "self")],
    }


def refund(
    refund_id: str, paid: dict[str, Any], amount: Decimal, base: str, now: str
) -> dict[str, Any]:
    currency = paid["amount"]["currency_code"]
    return {
        "id": refund_id,
        "amount": money(amount, currency),
        **{k: paid[k] for k in ("invoice_id", "custom_id") if k in paid},
        "seller_payable_breakdown": {
            "gross_amount": money(amount, currency),
            "paypal_fee": money(Decimal(0), currency),
            "net_amount": money(amount, currency),
            "total_refunded_amount": money(amount, currency),
        },
        "status": "COMPLETED",
        "create_time": now,
        "update_time": now,
        "links": [
            link(f"{base}/v2/payments/refunds/{refund_id}", "self"),
            link(f"{base}/v2/payments/captures/{paid['id']}", "up"),
        ],
    }
