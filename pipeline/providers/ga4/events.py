"""A canonical event as a GA4 Measurement Protocol event: its name, its params, its client id.

Names follow GA4's rules (≤ 40 letters, digits and underscores, starting with a letter; reserved
prefixes and web-stream names refused: support.google.com/analytics/answer/13316687); purchases and
refunds use GA4's recommended `purchase` and `refund` with the purchase's key as `transaction_id`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from pipeline.errors import ContractError
from pipeline.providers.shared.analytics import analytics_name, distinct_id
from pipeline.providers.shared.instants import stored_instant
from schemas.canonical import to_major_units

MAX_NAME = 40
MAX_VALUE = 100
MAX_PARAMS = 25
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_")
# web streams' reserved event names (support.google.com/analytics/answer/13316687)
RESERVED_NAMES = frozenset(
    {
        "ad_impression",
        "app_remove",
        "app_store_refund",
        "app_store_subscription_cancel",
        "app_store_subscription_renew",
        "click",
        "error",
        "file_download",
        "first_open",
        "first_visit",
        "form_start",
        "form_submit",
        "in_app_purchase",
        "page_view",
        "scroll",
        "session_start",
        "user_engagement",
        "view_complete",
        "video_progress",
        "video_start",
        "view_search_results",
    }
)
RECOMMENDED = {"purchase.completed": "purchase", "purchase.refunded": "refund"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def safe_name(raw: str) -> str | None:
    """`raw` under GA4's naming rules, or None when it cannot be made to follow them."""
    name = _UNSAFE.sub("_", raw.strip())[:MAX_NAME]
    if not name or not (name[0].isascii() and name[0].isalpha()):
        return None
    if name.lower().startswith(RESERVED_PREFIXES) or name in RESERVED_NAMES:
        return None
    return name


def event_name(event: dict[str, Any]) -> str:
    kind = event["type"]
    if kind in RECOMMENDED:
        return RECOMMENDED[kind]
    if not event.get("analytics"):
        return kind.replace(".", "_")[:MAX_NAME]
    name = safe_name(analytics_name(event))
    if name is None:
        raise ContractError(
            "the analytics event's name breaks GA4's naming rules", reason="ga4_name_refused"
        )
    return name


def transaction_id(event: dict[str, Any]) -> str:
    """The purchase's canonical key; a refund names the purchase it undoes by the same key."""
    if event["type"] == "purchase.completed":
        return str(event["key"])[:MAX_VALUE]
    return f"{event['provider']}:{event['purchase']['id']}"[:MAX_VALUE]


def _items(purchase: dict[str, Any]) -> list[dict[str, Any]]:
    currency = purchase["currency"]
    items = []
    for item in purchase.get("items") or []:
        quantity = item.get("quantity") or 1
        entry: dict[str, Any] = {"item_id": item["product"][:MAX_VALUE], "quantity": quantity}
        if item.get("name"):
            entry["item_name"] = item["name"][:MAX_VALUE]
        if item.get("amount") is not None:
            entry["price"] = to_major_units(item["amount"], currency) / quantity
        items.append(entry)
    return items


def _custom(properties: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in properties.items():
        name = safe_name(str(key))
        if name is None or len(params) == MAX_PARAMS:
            continue
        if isinstance(value, bool):
            params[name] = int(value)
        elif isinstance(value, int | float):
            params[name] = value
        elif isinstance(value, str):
            params[name] = value[:MAX_VALUE]
    return params


def event_params(event: dict[str, Any]) -> dict[str, Any]:
    purchase = event.get("purchase")
    if purchase:
        return {
            "transaction_id": transaction_id(event),
            "value": to_major_units(purchase["amount"], purchase["currency"]),
            "currency": purchase["currency"].upper(),
            "items": _items(purchase),
        }
    if event.get("analytics"):
        return _custom(event["analytics"].get("properties") or {})
    return {}


def client_id(event: dict[str, Any], salt: str) -> str:
    given = (event.get("contact") or {}).get("client_id")
    if given:
        return str(given)
    digest = hashlib.sha256(f"stackwire-ga4|{salt}|{distinct_id(event)}".encode()).digest()
    return f"{int.from_bytes(digest[:4], 'big')}.{int.from_bytes(digest[4:8], 'big')}"


def ga4_event(options: Mapping[str, Any], event: dict[str, Any], now: float) -> dict[str, Any]:
    built: dict[str, Any] = {"name": event_name(event), "params": event_params(event)}
    occurred = stored_instant(event["occurred_at"]).timestamp()
    if now - occurred <= options["max_backdate_hours"] * 3600:
        built["timestamp_micros"] = int(min(occurred, now) * 1_000_000)
    return built
