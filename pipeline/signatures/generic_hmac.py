"""A generic HMAC signature, described entirely by the source's options (no code per sender).

`signature_header` carries `<prefix><digest>`; the digest is an HMAC (`algorithm`: sha1, sha256,
sha512) of the raw body, or of "<timestamp>.<raw body>" when `signed = "timestamp.body"` (the
timestamp read from `timestamp_header` and refused outside `tolerance_seconds` either way),
encoded `hex` or `base64`. GitHub's `X-Hub-Signature-256: sha256=<hex of body>` is
`prefix = "sha256="`, the defaults otherwise. Options are validated when the config loads
(`pipeline.providers.generic_hmac.GenericHmacOptions`).
"""

from __future__ import annotations

from pipeline.config.model import SourceConfig
from pipeline.errors import SignatureError
from pipeline.signatures.base import (
    SignedRequest,
    Verified,
    check_timestamp,
    match_secret,
    required_header,
)
from pipeline.signatures.body_hmac import body_hmac


class GenericHmac:
    def verify(self, source: SourceConfig, request: SignedRequest) -> Verified:
        options = source.options
        header = options["signature_header"]
        given = required_header(request, header).strip()
        prefix = options.get("prefix") or ""
        if not given.startswith(prefix):
            raise SignatureError(
                "malformed_signature", f"The {header} header does not start with {prefix!r}."
            )
        given = given[len(prefix) :].strip()
        encoding = options.get("encoding", "hex")
        candidate = given.lower() if encoding == "hex" else given
        timestamp: int | None = None
        if options.get("signed") == "timestamp.body":
            name = options["timestamp_header"]
            timestamp = check_timestamp(
                request.headers.get(name), request.now, source.tolerance_seconds, name
            )
        index = match_secret(
            source.signing_secrets,
            [candidate.encode()],
            lambda secret: generic_hmac_signature(
                secret,
                request.body,
                algorithm=options.get("algorithm", "sha256"),
                encoding=encoding,
                timestamp=timestamp,
            ).encode(),
        )
        if index is None:
            raise SignatureError(
                "bad_signature", f"The {header} header matches none of the configured secrets."
            )
        return Verified(secret_index=index)


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
