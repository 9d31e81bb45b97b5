"""Teachable: no documented webhook signature, so a secret in the URL by default, HMAC if asked.

docs.teachable.com describes no signing of webhook deliveries, and public integrations protect
their endpoint with a secret in the URL (cbraegelmann/HERDTeachableHubspot
`teachableWebhookAuth.middleware.js`). One consultancy blog claims a `teachable-signature` hex
HMAC-SHA256 header [unverified]. So: `POST /webhooks/<source>?key=<secret>` unless the source sets
`signature_header` (and optionally `signature_encoding`), in which case that header must carry an
HMAC of the raw body keyed with one of the `signing_secrets`.
"""

from __future__ import annotations

from pipeline.config import SourceConfig
from receivers.schemes.base import SignedRequest, Verified
from receivers.schemes.body_hmac import BodyHmacScheme
from receivers.schemes.url_secret import UrlSecretScheme


class TeachableScheme:
    def verify(self, source: SourceConfig, request: SignedRequest) -> Verified:
        header = source.options.get("signature_header")
        if header:
            encoding = source.options.get("signature_encoding") or "hex"
            return BodyHmacScheme(header=header, encoding=encoding).verify(source, request)
        return UrlSecretScheme().verify(source, request)


SCHEME = TeachableScheme()
