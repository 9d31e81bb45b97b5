"""PayPal's SHA256withRSA, as the sandbox signs its webhooks and checks its own signatures."""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


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
