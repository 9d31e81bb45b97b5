"""How providers sign webhooks, as pure functions.

The receiver's schemes (`receivers.schemes`) verify with these; the simulator and the sandbox
sign with them, so both ends of every test speak exactly the same scheme.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def timestamped_hmac_hex(secret: str, timestamp: int | str, body: bytes) -> str:
    """Stripe and Calendly: hex HMAC-SHA256 of "<t>.<raw body>", the secret used as UTF-8 bytes."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def timestamped_hmac_header(secret: str, body: bytes, timestamp: int) -> str:
    """The `t=…,v1=…` header value a provider would send."""
    return f"t={timestamp},v1={timestamped_hmac_hex(secret, timestamp, body)}"


def body_hmac(secret: str, body: bytes, *, algorithm: str = "sha256", encoding: str = "hex") -> str:
    """HMAC of the raw body alone: Thinkific (hex SHA-256), Acuity (base64 SHA-256), and the
    generic HMAC source, whose algorithm and encoding are configurable."""
    digest = hmac.new(secret.encode("utf-8"), body, getattr(hashlib, algorithm)).digest()
    return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()


STANDARD_WEBHOOKS_PREFIX = "whsec_"


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64-decoded bytes after `whsec_`.

    Decoded like the reference library (`standardwebhooks.Webhook`): padding is added, so an
    unpadded secret works too. Raises ValueError (naming no part of the secret) when it is not base64.
    """
    encoded = secret.removeprefix(STANDARD_WEBHOOKS_PREFIX)
    try:
        key = base64.b64decode(encoded + "==")
    except ValueError:
        raise ValueError("a Standard Webhooks secret is whsec_ followed by base64") from None
    if not key:
        raise ValueError("a Standard Webhooks secret may not be empty")
    return key


def standard_webhooks_signature(
    key: bytes, msg_id: str, timestamp: int | str, body: bytes
) -> bytes:
    """The raw HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<raw body>"."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def standard_webhooks_headers(
    secret: str, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers a Standard Webhooks sender attaches (signature as `v1,<base64>`)."""
    digest = standard_webhooks_signature(standard_webhooks_key(secret), msg_id, timestamp, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def generic_hmac_signature(
    secret: str,
    body: bytes,
    *,
    algorithm: str = "sha256",
    encoding: str = "hex",
    timestamp: int | str | None = None,
) -> str:
    """The generic HMAC source's signature: over the body, or over "<timestamp>.<body>"."""
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return body_hmac(secret, signed, algorithm=algorithm, encoding=encoding)


def paypal_transmission_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> bytes:
    """PayPal: "<transmission id>|<transmission time>|<webhook id>|<CRC32 of the raw body>", the
    CRC32 as an unsigned decimal (PayPal-Java-SDK `SSLUtil.crc32`: `java.util.zip.CRC32.getValue`)."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


def rsa_sha256_sign(private_key_pem: bytes, message: bytes) -> str:
    """PayPal's `SHA256withRSA` (PKCS#1 v1.5), base64 as in `PAYPAL-TRANSMISSION-SIG`."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("SHA256withRSA needs an RSA private key")
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_sha256_verify(certificate_pem: bytes, message: bytes, signature_b64: str) -> bool:
    """True when `signature_b64` is a SHA256withRSA signature of `message` by the certificate's key."""
    public_key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, InvalidSignature):
        return False
    return True
