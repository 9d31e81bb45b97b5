"""Teachable: no documented webhook signature, so a secret in the URL by default, HMAC if asked.

docs.teachable.com describes no signing of webhook deliveries, and public integrations protect
their endpoint with a secret in the URL (cbraegelmann/HERDTeachableHubspot
`teachableWebhookAuth.middleware.js`). One consultancy blog claims a `teachable-signature` hex
HMAC-SHA256 header [unverified]. So: `POST /webhooks/<source>?key=<secret>` unless the source sets
`signature_header` (and optionally `signature_encoding`), in which case that header must carry an
HMAC of the raw body keyed with one of the `signing_secrets`.
"""

from __future__ import annotations

from pipeline.config.model import SourceConfig
from pipeline.signatures.base import SignedRequest, Verified
from pipeline.signatures.body_hmac import BodyHmac
from pipeline.signatures.url_secret import UrlSecret


class TeachableSignature:
    def verify(self, source: SourceConfig, request: SignedRequest) -> Verified:
        header = source.options.get("signature_header")
        if header:
            encoding = source.options.get("signature_encoding") or "hex"
            return BodyHmac(header=header, encoding=encoding).verify(source, request)
        return UrlSecret().verify(source, request)
