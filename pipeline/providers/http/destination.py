"""A generic HTTP destination (provider "http"): POST or PUT a canonical event to any URL.

```toml
[destinations.my-hook]
provider = "http"
url = "https://example.com/hooks/orders"
method = "POST"                                   # or PUT
headers = { "X-Api-Key" = "${MY_HOOK_KEY}" }      # static; ${VAR} from the environment
signing_secret = "${MY_HOOK_SECRET}"              # whsec_…: Standard Webhooks headers are sent
body = "canonical"                                # the canonical event as JSON, or a template:
# body = { email = "{{ contact.email }}", total = "{{ purchase.amount }}", kind = "{{ type }}" }
```

A template is any JSON object; a string that is exactly one `{{ path }}` takes the value's own
type (a number stays a number, a missing path is null); a string with text around references
becomes text. Paths are dotted names into the canonical event (`contact.email`,
`purchase.items.0.product`) or `delivery.idempotency_key` / `delivery.action`: no expressions, no
eval, no Jinja. With a `signing_secret` every request carries `webhook-id` (the delivery's
idempotency key, the same on every retry, so the receiver can deduplicate), `webhook-timestamp`
and `webhook-signature` as the Standard Webhooks spec defines them
(standard-webhooks/standard-webhooks `spec/standard-webhooks.md`). What is retried follows
`pipeline.delivery.http.raise_for_answer` (the spec's advice too: 3xx and 4xx fail, 429 and 5xx retry with
Retry-After, 410 means stop).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from marshmallow import ValidationError, fields, validate, validates

from pipeline.delivery.http import REDACTED_PATH
from pipeline.providers.base import DeliveryRef, DestinationContext, DestinationProvider
from pipeline.providers.shared.clients import destination_client
from pipeline.providers.shared.options import StrictOptions
from pipeline.signatures.standard_webhooks import standard_webhooks_headers, standard_webhooks_key
from schemas.config import HttpUrl

_REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9_.]+?)\s*\}\}")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+){0,9}$")
EVENT_ROOTS = (
    "type",
    "version",
    "key",
    "source",
    "provider",
    "occurred_at",
    "contact",
    "purchase",
    "subscription",
    "enrollment",
    "subscriber",
    "booking",
    "analytics",
)
DELIVERY_FIELDS = ("idempotency_key", "action")
MAX_TEMPLATE_DEPTH = 8
RESERVED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-length")


class HttpOptions(StrictOptions):
    url = HttpUrl(required=True)
    method = fields.Str(load_default="POST", validate=validate.OneOf(["POST", "PUT"]))
    headers = fields.Dict(
        keys=fields.Str(validate=validate.Regexp(r"^[A-Za-z0-9-]{1,100}$")),
        values=fields.Str(),
        load_default=dict,
    )
    body = fields.Raw(load_default="canonical")
    signing_secret = fields.Str(load_default=None)

    @validates("headers")
    def _no_signature_headers(self, value: dict[str, str], **kwargs: Any) -> None:
        clash = sorted(h for h in value if h.lower() in RESERVED_HEADERS)
        if clash:
            raise ValidationError(f"{clash[0]} is set by Stackwire itself, not in headers.")

    @validates("body")
    def _canonical_or_template(self, value: Any, **kwargs: Any) -> None:
        if value == "canonical":
            return
        if not isinstance(value, dict):
            raise ValidationError('body is "canonical" or a template object.')
        check_template(value)

    @validates("signing_secret")
    def _a_whsec_secret(self, value: str | None, **kwargs: Any) -> None:
        if value is None:
            return
        try:
            key = standard_webhooks_key(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if not value.startswith("whsec_") or not 24 <= len(key) <= 64:
            raise ValidationError(
                "signing_secret is whsec_ followed by base64 of 24-64 random bytes."
            )


def check_template(template: Any, depth: int = 0) -> None:
    """Refuses a template that could not resolve: bad paths, unknown roots, too deep."""
    if depth > MAX_TEMPLATE_DEPTH:
        raise ValidationError(f"The body template is nested deeper than {MAX_TEMPLATE_DEPTH}.")
    if isinstance(template, dict):
        for value in template.values():
            check_template(value, depth + 1)
    elif isinstance(template, list):
        for value in template:
            check_template(value, depth + 1)
    elif isinstance(template, str):
        for path in _REFERENCE.findall(template):
            check_path(path)
        if "{{" in _REFERENCE.sub("", template):
            raise ValidationError(
                f"{template!r} has a '{{{{' that is not a {{{{ path }}}} reference."
            )


def check_path(path: str) -> None:
    if not _PATH.match(path):
        raise ValidationError(f"{path!r} is not a dotted path like contact.email.")
    root, _, rest = path.partition(".")
    if root == "delivery":
        if rest not in DELIVERY_FIELDS:
            raise ValidationError(f"{path!r}: delivery offers {', '.join(DELIVERY_FIELDS)}.")
    elif root not in EVENT_ROOTS:
        raise ValidationError(f"{path!r} does not start with a canonical event field.")


def lookup(context: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (names into objects, numbers into lists), None when absent."""
    node: Any = context
    for name in path.split("."):
        if isinstance(node, dict):
            node = node.get(name)
        elif isinstance(node, list) and name.isdigit() and int(name) < len(node):
            node = node[int(name)]
        else:
            return None
    return node


def render(template: Any, context: dict[str, Any]) -> Any:
    """Fills a template's `{{ path }}` references from `context`; nothing else is interpreted."""
    if isinstance(template, dict):
        return {key: render(value, context) for key, value in template.items()}
    if isinstance(template, list):
        return [render(value, context) for value in template]
    if not isinstance(template, str):
        return template
    whole = _REFERENCE.fullmatch(template)
    if whole:
        return lookup(context, whole.group(1))

    def text(match: re.Match[str]) -> str:
        value = lookup(context, match.group(1))
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value)

    return _REFERENCE.sub(text, template)


def request_body(options: dict[str, Any], delivery: DeliveryRef, event: dict[str, Any]) -> bytes:
    template = options.get("body", "canonical")
    if template == "canonical":
        document: Any = event
    else:
        delivery_fields = {"idempotency_key": delivery.idempotency_key, "action": delivery.action}
        document = render(template, {**event, "delivery": delivery_fields})
    # serialized once: the signature covers exactly these bytes
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


class HttpDestination(DestinationProvider):
    name = "http"
    kind = "webhook"
    actions = {"send": "enrollments"}
    needs_api_base = False
    options_schema = HttpOptions

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        options = dict(ctx.destination.options)
        body = request_body(options, delivery, event)
        headers = {"Content-Type": "application/json", **options.get("headers", {})}
        if options.get("signing_secret"):
            timestamp = int(ctx.now or time.time())
            headers.update(
                standard_webhooks_headers(
                    options["signing_secret"], delivery.idempotency_key, timestamp, body
                )
            )
        # a Zapier or Make hook URL is its own secret: attempt rows and traces never show its path
        client = destination_client(
            ctx, ctx.destination.name, base_url=options["url"], shown_path=REDACTED_PATH
        )
        response = client.request(options["method"], "", data=body, headers=headers)
        return {"status": response.status_code, "webhook_id": delivery.idempotency_key}


DESTINATION = HttpDestination()
