"""Slack incoming webhooks as a destination: `notify` posts one message per canonical event.

`POST https://hooks.slack.com/services/T…/B…/…` with `{"text": "…"}`; success is 200 with the
plain-text body `ok`, anything else fails; errors are plain-text strings: 400 `invalid_payload`,
`no_text`; 403 `action_prohibited`; 404 `channel_not_found`; 410 `channel_is_archived`; 500
`rollup_error` (api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks;
`no_text` and `no_service` seen in integrations only [unverified]). 429 carries Retry-After
(api.slack.com/docs/rate-limits: about one message per second per webhook; set
`rate_limit = "1/s"` on the destination). 400 means our message is wrong; 403/404/410 mean the
webhook itself is gone or barred: a configuration problem for the creator.

The webhook URL is a secret (whoever has it can post): it must have an allowed origin
(`allowed_origins`, default `https://hooks.slack.com`; the tests add the sandbox's) and it never
reaches a log, an error or the attempt trace. Messages name people by name, or by a masked
address (`a***@example.com`), never by the raw address. Slack has no idempotency key: the
delivery ledger posts each message once, but a timeout after Slack posted it can repeat it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields, validates_schema

from pipeline.config.model import Config
from pipeline.errors import ConfigurationError, PermanentError
from pipeline.providers.base import DeliveryRef, DestinationContext, DestinationProvider
from pipeline.providers.shared.clients import destination_client
from pipeline.providers.shared.contacts import display_name
from pipeline.providers.shared.instants import stored_instant
from pipeline.providers.shared.options import StrictOptions
from schemas.canonical import currency_exponent
from schemas.config import HttpUrl

_WEBHOOK_PATH = re.compile(r"/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+$")
_ERROR_CODE = re.compile(r"^[a-z_]{1,40}$")
REDACTED_PATH = "/services/[redacted]"
CONFIGURATION_STATUSES = (403, 404, 410)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class SlackOptions(StrictOptions):
    webhook_url = HttpUrl(required=True)
    allowed_origins = fields.List(fields.Str(), load_default=lambda: ["https://hooks.slack.com"])

    @validates_schema
    def _a_slack_webhook(self, data: dict[str, Any], **kwargs: Any) -> None:
        url = data["webhook_url"]
        allowed = {origin(entry) for entry in data["allowed_origins"]}
        if origin(url) not in allowed:
            # the URL is a secret: name the rule, not the value
            raise ValidationError(
                "webhook_url must start with one of allowed_origins "
                "(https://hooks.slack.com by default).",
                "webhook_url",
            )
        if not _WEBHOOK_PATH.search(urlsplit(url).path):
            raise ValidationError(
                "webhook_url is an incoming-webhook URL, …/services/T…/B…/….", "webhook_url"
            )


def escape(text: str) -> str:
    """Slack's three control characters (api.slack.com "Escaping text"): no <!channel> from a name."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def amount_text(purchase: dict[str, Any]) -> str:
    exponent = currency_exponent(purchase["currency"])
    value = Decimal(purchase["amount"]).scaleb(-exponent)
    return f"{value:.{exponent}f} {purchase['currency'].upper()}"


def product_names(config: Config, purchase: dict[str, Any]) -> str:
    names = []
    for item in purchase.get("items") or []:
        product = config.products.get(item["product"])
        names.append(item.get("name") or (product.name if product else None) or item["product"])
    return ", ".join(escape(name) for name in names) or "an order"


def when(starts_at: str, zone: str) -> str:
    """The start in UTC and in the attendee's own zone (the zone's rules, not a fixed offset)."""
    try:
        moment = stored_instant(starts_at)
    except ValueError:
        return escape(starts_at)  # validated as ISO 8601 upstream; shown as given if Python differs
    utc = moment.astimezone(ZoneInfo("UTC")).strftime("%a %d %b %Y %H:%M UTC")
    try:
        local = moment.astimezone(ZoneInfo(zone)).strftime("%a %d %b %Y %H:%M")
    except (ZoneInfoNotFoundError, ValueError):
        return utc
    return f"{utc} ({local} {escape(zone)})"


def _purchase_completed(config: Config, event: dict[str, Any]) -> str:
    purchase = event["purchase"]
    return (
        f"New purchase: {escape(display_name(event))} bought {product_names(config, purchase)}"
        f" for {amount_text(purchase)}."
    )


def _booking_created(config: Config, event: dict[str, Any]) -> str:
    booking = event["booking"]
    what = escape(booking.get("event_name") or "a session")
    return (
        f"New booking: {escape(display_name(event))} booked {what}"
        f" for {when(booking['starts_at'], booking['timezone'])}."
    )


def _generic(config: Config, event: dict[str, Any]) -> str:
    return f"{escape(event['type'])} from {escape(event['source'])}: {escape(display_name(event))}."


MESSAGES: dict[str, Callable[[Config, dict[str, Any]], str]] = {
    "purchase.completed": _purchase_completed,
    "booking.created": _booking_created,
}


def message(config: Config, event: dict[str, Any]) -> str:
    return MESSAGES.get(event["type"], _generic)(config, event)


def _failure(status: int, body: str) -> PermanentError:
    code = body if _ERROR_CODE.match(body) else "unexpected_answer"
    text = f"Slack answered {status} {code}"
    if status in CONFIGURATION_STATUSES:
        return ConfigurationError(
            f"{text}: the webhook is revoked, barred or its channel is gone",
            reason=f"slack_{code}",
            http_status=status,
        )
    return PermanentError(text, reason=f"slack_{code}", http_status=status)


class SlackDestination(DestinationProvider):
    name = "slack"
    kind = "notifications"
    actions = {"notify": "enrollments"}
    needs_api_base = False
    options_schema = SlackOptions

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        # the path is the webhook's secret: attempt rows and traces show REDACTED_PATH instead
        client = destination_client(
            ctx,
            "slack",
            base_url=ctx.destination.options["webhook_url"],
            shown_path=REDACTED_PATH,
        )
        text = message(ctx.config, event)
        response = client.request(
            "POST", "", json={"text": text}, accept=(400, *CONFIGURATION_STATUSES)
        )
        body = response.text.strip()[:60]
        if response.status_code != 200 or body != "ok":
            raise _failure(response.status_code, body)
        return {"posted": True, "chars": len(text)}


DESTINATION = SlackDestination()
