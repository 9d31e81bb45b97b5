"""PayPal: five `PAYPAL-*` transmission headers, checked at the edge; authenticity in the verify task.

PayPal signs asymmetrically (SHA256withRSA over "<transmission id>|<time>|<webhook id>|<crc32>",
developer.paypal.com/api/rest/webhooks/rest). Proving it needs PayPal's certificate or its
`verify-webhook-signature` API, i.e. outbound calls, which never happen inside the request: the
provider's verify task does the postback. Here we refuse what cannot be a PayPal transmission:
a missing or malformed header, a transmission time outside the source's tolerance (both ways),
a certificate URL that is not https or not on a PayPal API host. The PayPal source puts a URL
secret in front of these checks (`AllOf(UrlSecret(), PayPalTransmission())`, docs/providers.md):
well-formed headers alone prove nothing, and each stored row costs a postback later.

Formats follow the `verify_webhook_signature` request schema (developer.paypal.com/api/webhooks/v1,
limits: transmission_id 50, transmission_sig 500, cert_url 500, auth_algo `^[a-zA-Z0-9]+$` 100).
Certificate hosts: real cert URLs live on `api.paypal.com` / `api.sandbox.paypal.com` (PayPal SDK
samples), not on the `api-m.` hosts used as api_base, so each api-m host implies its twin [U];
the `cert_hosts` source option adds more. Each delivery attempt is its own transmission with its
own time [U: "the date and time of the HTTP transmission"], so PayPal's retries (25 over 3 days)
pass the tolerance; `tolerance_seconds` is per source should that prove wrong.
"""

from __future__ import annotations

import re
import zlib
from datetime import datetime
from urllib.parse import SplitResult, urlsplit

from pipeline.config.model import SourceConfig
from pipeline.errors import SignatureError
from pipeline.signatures.base import SignedRequest, Verified, check_timestamp, required_header

# verify-webhook-signature field -> the transmission header it is read from
POSTBACK_FIELDS = {
    "auth_algo": "PAYPAL-AUTH-ALGO",
    "cert_url": "PAYPAL-CERT-URL",
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
}


TRANSMISSION_HEADERS = tuple(POSTBACK_FIELDS.values())

TRANSMISSION_ID = POSTBACK_FIELDS["transmission_id"]
TRANSMISSION_TIME = POSTBACK_FIELDS["transmission_time"]
TRANSMISSION_SIG = POSTBACK_FIELDS["transmission_sig"]
CERT_URL = POSTBACK_FIELDS["cert_url"]
AUTH_ALGO = POSTBACK_FIELDS["auth_algo"]

_FORMATS = {
    TRANSMISSION_ID: re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$"),
    TRANSMISSION_SIG: re.compile(r"^[A-Za-z0-9+/]{16,498}={0,2}$"),
    AUTH_ALGO: re.compile(r"^[A-Za-z0-9]{1,100}$"),
}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
MAX_CERT_URL = 500
# the certificate host that goes with each PayPal API host
CERT_HOST_TWINS = {
    "api-m.paypal.com": "api.paypal.com",
    "api-m.sandbox.paypal.com": "api.sandbox.paypal.com",
}


class PayPalTransmission:
    def verify(self, source: SourceConfig, request: SignedRequest) -> Verified:
        values = {name: required_header(request, name).strip() for name in TRANSMISSION_HEADERS}
        for name, pattern in _FORMATS.items():
            if not pattern.match(values[name]):
                raise SignatureError("malformed_signature", f"The {name} header is malformed.")
        sent_at = transmission_epoch(values[TRANSMISSION_TIME])
        check_timestamp(str(sent_at), request.now, source.tolerance_seconds, TRANSMISSION_TIME)
        check_cert_url(values[CERT_URL], source)
        return Verified(secret_index=None)


def transmission_epoch(value: str) -> int:
    """An RFC 3339 date-time with its offset, as epoch seconds."""
    # fromisoformat takes at most 6 fractional digits; a second is all the tolerance needs
    try:
        if not _RFC3339.match(value):
            raise ValueError(value)
        whole = re.sub(r"\.\d+", "", value).replace("Z", "+00:00")
        return int(datetime.fromisoformat(whole).timestamp())
    except ValueError:  # not the format, or a date that does not exist (February 30th)
        raise SignatureError(
            "malformed_signature", f"The {TRANSMISSION_TIME} header is not an RFC 3339 date-time."
        ) from None


def check_cert_url(url: str, source: SourceConfig) -> None:
    """https on a trusted host; plain http only when the configured API itself is http (the sandbox)."""
    if len(url) > MAX_CERT_URL:
        raise SignatureError("untrusted_cert_url", f"The {CERT_URL} header is too long.")
    try:
        cert = urlsplit(url)
        where = _host_port(cert)
    except ValueError:
        raise SignatureError("untrusted_cert_url", f"The {CERT_URL} header is not a URL.") from None
    base = urlsplit(source.api_base or "")
    allowed_schemes = {"https", "http"} if base.scheme == "http" else {"https"}
    if cert.scheme not in allowed_schemes or cert.username or cert.password:
        raise SignatureError(
            "untrusted_cert_url", f"The {CERT_URL} header must be an https URL on a PayPal host."
        )
    if where not in trusted_hosts(source, base):
        raise SignatureError(
            "untrusted_cert_url", f"The {CERT_URL} header names a host this source does not trust."
        )


def trusted_hosts(source: SourceConfig, base: SplitResult) -> set[tuple[str, int]]:
    """(host, port) pairs: the api_base's, its certificate twin's, and each `cert_hosts` entry's."""
    hosts = {_host_port(base)}
    twin = CERT_HOST_TWINS.get(base.hostname or "")
    if twin:
        hosts.add((twin, 443))
    for extra in source.options.get("cert_hosts") or ():
        hosts.add(_host_port(urlsplit(f"https://{extra}")))
    return hosts


def _host_port(url: SplitResult) -> tuple[str, int]:
    """Raises ValueError for a port that is not a number."""
    return (url.hostname or "").lower(), url.port or (80 if url.scheme == "http" else 443)


def paypal_transmission_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> bytes:
    """PayPal: "<transmission id>|<transmission time>|<webhook id>|<CRC32 of the raw body>", the
    CRC32 as an unsigned decimal (PayPal-Java-SDK `SSLUtil.crc32`: `java.util.zip.CRC32.getValue`)."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()
