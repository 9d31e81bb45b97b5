"""No signature, a secret in the URL: `POST /webhooks/<source>?key=<secret>`.

Mailchimp documents no webhook signature and recommends exactly this (a hard-to-guess secret in
the URL, over HTTPS); ActiveCampaign and Kajabi hooks are protected the same way. The secret is
compared in constant time against each configured one, so it can rotate like any other.
"""

from __future__ import annotations

from pipeline.config.model import SourceConfig
from pipeline.errors import SignatureError
from pipeline.signatures.base import SignedRequest, Verified, match_secret

PARAMETER = "key"


class UrlSecret:
    def verify(self, source: SourceConfig, request: SignedRequest) -> Verified:
        given = request.query.get(PARAMETER)
        if not given:
            raise SignatureError("missing_signature", "The webhook URL carries no ?key= secret.")
        index = match_secret(source.signing_secrets, [given.encode()], lambda s: s.encode())
        if index is None:
            raise SignatureError("bad_signature", "The ?key= secret matches none configured.")
        return Verified(secret_index=index)
