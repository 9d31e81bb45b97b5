"""PayPal as a source (payments lane): transmissions verified by postback, captures and refunds
fetched, canonical purchases out.

API facts (developer.paypal.com/api/rest/authentication, /api/webhooks/v1, /api/payments/v2,
/api/orders/v2): an OAuth2 client-credentials token from `POST /v1/oauth2/token` (Basic
client_id:client_secret, form `grant_type=client_credentials`, answer `access_token` +
`expires_in`), cached in Redis until shortly before it expires; `POST
/v1/notifications/verify-webhook-signature` with the five transmission headers, our `webhook_id`
and the event exactly as received answers `verification_status` SUCCESS or FAILURE (a bad
signature is still HTTP 200). FAILURE dead-letters the event as `configuration` /
`postback_failed` (alerted, replayable): our own webhook_id is as likely at fault as a forgery.
The webhook is a pointer: we re-read `GET /v2/payments/captures/{id}`
(or `/v2/payments/refunds/{id}` and the capture its `up` link names) and the order
`GET /v2/checkout/orders/{id}` named by `supplementary_data.related_ids.order_id`, for the payer
and the items. Ids are validated before they enter a URL; URLs are always built from api_base.

Mapping: PAYMENT.CAPTURE.COMPLETED -> purchase.completed keyed `paypal:<order id or capture
id>` (a PENDING capture waits: approved or pending is not paid); PAYMENT.CAPTURE.REFUNDED ->
purchase.refunded keyed `paypal:<refund id>:refunded` (a partial refund is ignored, as for
Stripe); CHECKOUT.ORDER.APPROVED waits (approved is not paid). Product key of an item, in this
order: `purchase_units[].items[].sku`, else the unit's `custom_id`, else its `reference_id`
(PayPal fills "default" when the merchant set none). Amounts: decimal strings to ISO 4217 minor
units (`schemas.canonical.to_minor_units`: JPY/KRW 0 decimals, KWD/BHD 3), currency lower-cased.
Sources: developer.paypal.com (authentication, verify-webhook-signature reference, the crypto
checkout guide's PAYMENT.CAPTURE.COMPLETED sample, Orders v2 `orders-get`), PayPal's schemas as
mirrored in api-evangelist/paypal `json-schema/paypal-{capture,refund,verify-webhook-signature}-schema.json`.
Unverified [U], read defensively: the PAYMENT.CAPTURE.REFUNDED resource (a refund whose `up`
link names the capture: third-party samples, PayPal's refund schema; `supplementary_data.
related_ids.capture_id` is read too), `invoice_number` beside `invoice_id` (v1-era payloads),
and the token lifetime (we trust `expires_in`, renewing `TOKEN_MARGIN_SECONDS` early and once
more on a 401).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
from marshmallow import ValidationError, fields, validate, validates

from pipeline import keys
from pipeline.delivery.http import ApiClient
from pipeline.errors import BadPayload, ConfigurationError, ContractError
from pipeline.log.events import StoredEvent
from pipeline.providers.base import Fetched, Identified, SourceContext, SourceProvider, Verdict
from pipeline.providers.paypal.mapping import (
    TIMESTAMPS,
    canonical_event,
    finality,
    paypal_id,
    version,
)
from pipeline.providers.shared.instants import parse_instant
from pipeline.providers.shared.options import StrictOptions
from pipeline.signatures.base import AllOf
from pipeline.signatures.paypal import POSTBACK_FIELDS, TRANSMISSION_HEADERS, PayPalTransmission
from pipeline.signatures.url_secret import UrlSecret
from schemas.contracts.paypal import CONTRACTS

log = logging.getLogger(__name__)
CAPTURE_PATH = re.compile(r"/v2/payments/captures/([^/]+)$")
ORDER_PATH = re.compile(r"/v2/checkout/orders/([^/]+)$")
DEFAULT_API_BASE = "https://api-m.paypal.com"
TOKEN_MARGIN_SECONDS = 300
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
# FAILURE says the signature does not match *our* webhook_id: a forged or altered event, or just
# as likely our own setting (a sandbox id on live, a webhook re-created in the dashboard), which
# would fail every genuine payment. So the event is dead-lettered as configuration, alerted, and
# replayed once the setting is checked; it is never silently rejected.
POSTBACK_FAILED = (
    "PayPal's verify-webhook-signature answered FAILURE: check the source's webhook_id and "
    "api_base (a sandbox webhook id on live?), then replay; a forged or altered event fails too"
)


class PayPalOptions(StrictOptions):
    client_id = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    client_secret = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    # the id PayPal shows for the webhook subscription; pattern of verify-webhook-signature
    webhook_id = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z0-9]{1,50}$"))
    # hosts (optionally host:port) besides the api_base's whose PAYPAL-CERT-URL the edge accepts
    cert_hosts = fields.List(fields.Str(), load_default=list)

    @validates("cert_hosts")
    def _hosts(self, value: list[str], **kwargs: Any) -> None:
        for entry in value:
            host, colon, port = entry.partition(":")
            if not _HOST.match(host) or (colon and not (port.isdigit() and 0 < int(port) < 65536)):
                raise ValidationError(f"{entry!r} is not a host or host:port.")


def linked_id(obj: Mapping[str, Any], rel: str, path: re.Pattern[str]) -> str | None:
    """The id at the end of the `rel` HATEOAS link's path; the link itself is never requested."""
    for link in obj.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == rel:
            found = path.search(urlsplit(str(link.get("href", ""))).path)
            if found:
                return paypal_id(found.group(1))
    return None


@dataclass
class PayPalApi:
    """PayPal's REST API for one source, with the OAuth token cached per source and client id."""

    ctx: SourceContext

    @property
    def base_url(self) -> str:
        return self.ctx.source.api_base or DEFAULT_API_BASE

    def get(self, path: str) -> dict[str, Any]:
        return self.call("GET", path)

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._client(self.token()).request(method, path, accept=(401,), **kwargs)
        if response.status_code == 401:
            # a cached token PayPal no longer honours (revoked, expired early): one fresh try
            response = self._client(self.token(fresh=True)).request(method, path, **kwargs)
        return _json(response)

    def token(self, *, fresh: bool = False) -> str:
        key = self._cache_key()
        cached = None if fresh else self._cached(key)
        if cached:
            return cached
        options = self.ctx.source.options
        client = ApiClient(
            provider="paypal",
            base_url=self.base_url,
            session=self.ctx.http,
            auth=(options["client_id"], options["client_secret"]),
        )
        answer = _json(
            client.request(
                "POST",
                "/v1/oauth2/token",
                data={"grant_type": "client_credentials"},
                headers={"Accept": "application/json"},
            )
        )
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise ContractError(
                "PayPal's token answer has no access_token or expires_in", reason="bad_token_answer"
            )
        ttl = expires_in - min(TOKEN_MARGIN_SECONDS, expires_in // 2)
        try:
            if ttl > 0:
                self.ctx.redis.set(key, token, ex=ttl)
        except redis.RedisError:
            log.warning("could not cache the PayPal token", extra={"source": self.ctx.source.name})
        return token

    def _cached(self, key: str) -> str | None:
        try:
            value = self.ctx.redis.get(key)
        except redis.RedisError:
            log.warning("token cache unavailable", extra={"source": self.ctx.source.name})
            return None
        return value.decode() if isinstance(value, bytes) else None

    def _cache_key(self) -> str:
        # a new client id or API base is a new token, never a stale one
        who = f"{self.base_url}|{self.ctx.source.options['client_id']}".encode()
        return keys.access_token(
            "paypal", f"{self.ctx.source.name}:{hashlib.sha256(who).hexdigest()[:16]}"
        )

    def _client(self, token: str) -> ApiClient:
        return ApiClient(
            provider="paypal",
            base_url=self.base_url,
            session=self.ctx.http,
            headers={"Authorization": f"Bearer {token}"},
        )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        found = response.json()
    except ValueError:
        raise ContractError(
            "PayPal answered with a body that is not JSON", reason="bad_json"
        ) from None
    if not isinstance(found, dict):
        raise ContractError("PayPal answered with JSON that is not an object", reason="bad_json")
    return found


def postback_body(event: StoredEvent, webhook_id: str) -> bytes:
    """The verify-webhook-signature request, with the event spliced in byte for byte as received."""
    headers = {name.upper(): value for name, value in event.headers.items()}
    missing = [h for h in TRANSMISSION_HEADERS if not headers.get(h)]
    if missing:
        raise ContractError(
            f"the stored event lacks {missing[0]}", reason="no_transmission_headers"
        )
    request = {name: headers[header] for name, header in POSTBACK_FIELDS.items()}
    request["webhook_id"] = webhook_id
    # the receiver accepted the body as a JSON object, so splicing it keeps the request valid JSON
    return json.dumps(request)[:-1].encode() + b', "webhook_event": ' + event.body + b"}"


def _fetch_capture(api: PayPalApi, payload: dict[str, Any]) -> Fetched:
    capture_id = paypal_id(payload["resource"]["id"])
    capture = api.get(f"/v2/payments/captures/{capture_id}")
    found = {"capture": capture, "order": _order_of(api, capture)}
    return Fetched(found, f"paypal:capture:{capture_id}", version(capture, payload))


def _fetch_refund(api: PayPalApi, payload: dict[str, Any]) -> Fetched:
    refund_id = paypal_id(payload["resource"]["id"])
    refund = api.get(f"/v2/payments/refunds/{refund_id}")
    related = (refund.get("supplementary_data") or {}).get("related_ids") or {}
    capture_id = related.get("capture_id") or linked_id(refund, "up", CAPTURE_PATH)
    if capture_id is None:
        raise ContractError("the PayPal refund names no capture", reason="refund_without_capture")
    capture = api.get(f"/v2/payments/captures/{paypal_id(capture_id)}")
    found = {"refund": refund, "capture": capture, "order": _order_of(api, capture)}
    return Fetched(found, f"paypal:refund:{refund_id}", version(refund, payload))


def _order_of(api: PayPalApi, capture: dict[str, Any]) -> dict[str, Any] | None:
    related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
    order_id = related.get("order_id") or linked_id(capture, "up", ORDER_PATH)
    return api.get(f"/v2/checkout/orders/{paypal_id(order_id)}") if order_id else None


Fetcher = Callable[[PayPalApi, dict[str, Any]], Fetched]
FETCHERS: dict[str, Fetcher] = {
    "PAYMENT.CAPTURE.COMPLETED": _fetch_capture,
    "PAYMENT.CAPTURE.REFUNDED": _fetch_refund,
}


class PayPalSource(SourceProvider):
    name = "paypal"
    # PayPal signs with its own RSA key, provable only by a call to PayPal: a URL secret in front
    # keeps anyone else from storing rows and spending an OAuth token and a postback on each
    signature = AllOf(UrlSecret(), PayPalTransmission())
    stored_headers = (*TRANSMISSION_HEADERS, *SourceProvider.stored_headers)
    # what holds the key is still unproven until the postback: stored at most this fast
    default_unverified_rate = (20.0, 100)
    default_api_base = DEFAULT_API_BASE
    default_on_unknown_fields = "warn"
    options_schema = PayPalOptions
    lane = "payments"
    contracts = CONTRACTS

    def identify(self, payload: Any, body: bytes, headers: Any) -> Identified:
        if not isinstance(payload, dict):
            raise BadPayload("missing_event_id", "A PayPal event is a JSON object.")
        event_id, event_type = payload.get("id"), payload.get("event_type")
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 255:
            raise BadPayload("missing_event_id", "A PayPal event needs a string 'id'.")
        if not isinstance(event_type, str) or not event_type:
            raise BadPayload("missing_event_type", "A PayPal event needs a string 'event_type'.")
        return Identified(external_id=event_id, provider_type=event_type)

    def verify(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Verdict | None:
        body = postback_body(event, ctx.source.options["webhook_id"])
        answer = PayPalApi(ctx).call(
            "POST",
            "/v1/notifications/verify-webhook-signature",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        status = answer.get("verification_status")
        if status == "FAILURE":
            raise ConfigurationError(POSTBACK_FAILED, reason="postback_failed")
        if status != "SUCCESS":
            raise ContractError(
                "PayPal's verify-webhook-signature answer has no SUCCESS or FAILURE status",
                reason="bad_postback_answer",
            )
        return finality(event.provider_type, payload["resource"])

    def fetch(self, ctx: SourceContext, event: StoredEvent, payload: Any) -> Fetched | None:
        fetcher = FETCHERS.get(event.provider_type)
        return fetcher(PayPalApi(ctx), payload) if fetcher else None

    def canonicalize(
        self, ctx: SourceContext, event: StoredEvent, payload: Any, fetched: Fetched | None
    ) -> dict[str, Any] | Verdict:
        base = {
            "source": event.source,
            "provider": self.name,
            "occurred_at": parse_instant(payload["create_time"], TIMESTAMPS, naive_zone=None),
        }
        return canonical_event(event.provider_type, fetched, base)


SOURCE = PayPalSource()
