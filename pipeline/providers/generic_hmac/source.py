"""A generic HMAC source: any sender that signs with a shared secret, described by options only.

The signature (`receivers.schemes.generic_hmac`) and where the id and type live are all options:

```toml
[sources.my-app]
provider = "generic_hmac"
signing_secrets = ["${MY_APP_SECRET}"]
signature_header = "X-Hub-Signature-256"   # required
prefix = "sha256="                         # GitHub's style; default none
algorithm = "sha256"                       # sha1 | sha256 | sha512
encoding = "hex"                           # hex | base64
signed = "body"                            # or "timestamp.body" (then timestamp_header)
# timestamp_header = "X-Timestamp"         # only then: unix seconds, checked both ways
id_field = "id"                            # dotted path into the JSON body
type_field = "type"
```

The body is the canonical envelope (`schemas.contracts.generic`). An event without an id at
`id_field` is identified by the SHA-256 of its body (`body-sha256:<hex>`): an exact resend is still
deduplicated, but a sender that changes a byte makes a new event, so give ids when you can.
GitHub's format (docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries: HMAC-SHA256
hex of the raw body in `X-Hub-Signature-256`, `sha256=` prefix) is the model for the defaults.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from pipeline.config.model import SourceConfig
from pipeline.errors import BadPayload
from pipeline.providers.base import Identified
from pipeline.providers.shared.options import StrictOptions
from pipeline.providers.standard_webhooks.source import EnvelopeSource, event_type
from pipeline.signatures.generic_hmac import GenericHmac

_PATH = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,100}$")
MAX_ID_CHARS = 255
BODY_HASH_PREFIX = "body-sha256:"


class GenericHmacOptions(StrictOptions):
    signature_header = fields.Str(
        required=True,
        validate=validate.Regexp(_HEADER, error="A header name is letters, digits and '-'."),
    )
    algorithm = fields.Str(
        load_default="sha256", validate=validate.OneOf(["sha1", "sha256", "sha512"])
    )
    encoding = fields.Str(load_default="hex", validate=validate.OneOf(["hex", "base64"]))
    prefix = fields.Str(load_default="", validate=validate.Length(max=40))
    signed = fields.Str(load_default="body", validate=validate.OneOf(["body", "timestamp.body"]))
    timestamp_header = fields.Str(
        load_default=None,
        validate=validate.Regexp(_HEADER, error="A header name is letters, digits and '-'."),
    )
    id_field = fields.Str(
        load_default="id",
        validate=validate.Regexp(
            _PATH, error="A field path is dotted names, like 'id' or 'meta.event_id'."
        ),
    )
    type_field = fields.Str(
        load_default="type",
        validate=validate.Regexp(
            _PATH, error="A field path is dotted names, like 'type' or 'meta.event'."
        ),
    )

    @validates_schema
    def _timestamp_header_goes_with_signed(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["signed"] == "timestamp.body" and not data.get("timestamp_header"):
            raise ValidationError(
                "signed = 'timestamp.body' needs the header that carries the timestamp.",
                "timestamp_header",
            )
        if data["signed"] == "body" and data.get("timestamp_header"):
            raise ValidationError(
                "timestamp_header is read only when signed = 'timestamp.body'.", "timestamp_header"
            )


def dig(payload: Any, path: str) -> Any:
    """The value at a dotted path of nested objects, or None when any step is missing."""
    node = payload
    for name in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(name)
    return node


class GenericHmacSource(EnvelopeSource):
    name = "generic_hmac"
    signature = GenericHmac()
    options_schema = GenericHmacOptions

    def identify(self, payload: Any, body: bytes, headers: Mapping[str, str]) -> Identified:
        return self._identify(payload, body, "id", "type")

    def identify_for(
        self, source: SourceConfig, payload: Any, body: bytes, headers: Mapping[str, str]
    ) -> Identified:
        options = source.options
        return self._identify(payload, body, options["id_field"], options["type_field"])

    def _identify(self, payload: Any, body: bytes, id_field: str, type_field: str) -> Identified:
        if not isinstance(payload, dict):
            raise BadPayload("not_an_envelope", "The body must be a JSON object (an envelope).")
        kind = event_type(dig(payload, type_field))
        found = dig(payload, id_field)
        if isinstance(found, bool) or not isinstance(found, str | int) or found == "":
            # no id: the body itself is the identity (documented above)
            return Identified(BODY_HASH_PREFIX + hashlib.sha256(body).hexdigest(), kind)
        external_id = str(found)
        if len(external_id) > MAX_ID_CHARS:
            raise BadPayload(
                "bad_event_id", f"The event id is longer than {MAX_ID_CHARS} characters."
            )
        return Identified(external_id, kind)


SOURCE = GenericHmacSource()
