"""PayPal's fetched capture, refund and order as canonical purchase events (see `source.py`).

Kept apart from the API client so each module stays one concern. Amounts are PayPal money objects
(`{"currency_code": "JPY", "value": "1500"}`) turned into ISO 4217 minor units; product keys are
the item's `sku`, else the purchase unit's `custom_id`, else its `reference_id`.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.errors import ContractError
from pipeline.providers.base import Fetched, Verdict
from pipeline.providers.shared import shape
from pipeline.providers.shared.instants import Refusals, parse_instant, version_ms
from schemas.canonical import to_minor_units

_ID = re.compile(r"^[A-Z0-9-]{1,64}$")
CAPTURE_GOES_ON = ("COMPLETED", "PARTIALLY_REFUNDED")
CAPTURE_VERDICTS = {
    "PENDING": Verdict("wait", "payment_not_final"),
    "REFUNDED": Verdict("ignore", "refunded_before_processing"),
}
# RFC 3339 always carries an offset: a PayPal time without one is refused
TIMESTAMPS = Refusals.of_provider("PayPal", malformed="is not RFC 3339", naive="has no offset")
WAITING_TYPES = {"CHECKOUT.ORDER.APPROVED": Verdict("wait", "order_approved_not_captured")}


def paypal_id(value: Any) -> str:
    """An id about to go into a URL path or a key: PayPal's alphabet only."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ContractError("a PayPal object id is missing or malformed", reason="bad_object_id")
    return value


def finality(event_type: str, resource: dict[str, Any]) -> Verdict | None:
    """Approved is not paid, pending is not paid: those wait for PAYMENT.CAPTURE.COMPLETED."""
    if event_type == "PAYMENT.CAPTURE.COMPLETED" and resource.get("status") == "PENDING":
        return CAPTURE_VERDICTS["PENDING"]
    return WAITING_TYPES.get(event_type)


def version(obj: dict[str, Any], payload: dict[str, Any]) -> int:
    stamp = obj.get("update_time") or obj.get("create_time") or payload["create_time"]
    return version_ms(parse_instant(stamp, TIMESTAMPS, naive_zone=None))


def canonical_event(
    event_type: str, fetched: Fetched | None, base: dict[str, Any]
) -> dict[str, Any] | Verdict:
    if fetched is None:
        return WAITING_TYPES.get(event_type) or Verdict("ignore", "not_mapped")
    capture, order = fetched.object["capture"], fetched.object["order"]
    if event_type == "PAYMENT.CAPTURE.REFUNDED":
        return _refunded(fetched.object["refund"], capture, order, base)
    if capture.get("status") not in CAPTURE_GOES_ON:
        return CAPTURE_VERDICTS.get(
            capture.get("status"), Verdict("ignore", "capture_not_completed")
        )
    purchase = _purchase(capture, order, capture["amount"])
    return shape.event(
        "purchase.completed",
        key=f"paypal:{purchase['id']}",
        **base,
        contact=_contact(order),
        purchase=purchase,
    )


def _refunded(
    refund: dict[str, Any],
    capture: dict[str, Any],
    order: dict[str, Any] | None,
    base: dict[str, Any],
) -> dict[str, Any] | Verdict:
    if refund.get("status") == "PENDING":
        return Verdict("wait", "refund_not_final")
    if refund.get("status") != "COMPLETED":
        return Verdict("ignore", "refund_not_completed")
    if capture.get("status") != "REFUNDED":
        return Verdict("ignore", "partial_refund")
    return shape.event(
        "purchase.refunded",
        key=f"paypal:{paypal_id(refund.get('id'))}:refunded",
        **base,
        contact=_contact(order),
        purchase=_purchase(capture, order, refund["amount"], reason="refunded"),
    )


def _contact(order: dict[str, Any] | None) -> dict[str, Any]:
    """The payer: `payment_source.paypal` first, the deprecated `payer` object second."""
    wallet = ((order or {}).get("payment_source") or {}).get("paypal") or {}
    payer = (order or {}).get("payer") or {}
    name = wallet.get("name") or payer.get("name") or {}
    return shape.contact(
        wallet.get("email_address") or payer.get("email_address"),
        first_name=name.get("given_name"),
        last_name=name.get("surname"),
        external_ids={"paypal_payer": wallet.get("account_id") or payer.get("payer_id") or ""},
    )


def minor_units(money: Any) -> tuple[int, str]:
    """PayPal money `{currency_code, value}` as (integer minor units, lower-case ISO code)."""
    if not isinstance(money, dict) or not isinstance(money.get("currency_code"), str):
        raise ContractError("a PayPal amount has no currency_code", reason="no_amount")
    currency, value = money["currency_code"], money.get("value")
    if not isinstance(value, str):
        raise ContractError("a PayPal amount value is not a string", reason="bad_amount")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ContractError("a PayPal currency_code is not ISO 4217", reason="bad_currency")
    try:
        return to_minor_units(value, currency), currency.lower()
    except ValueError as exc:
        raise ContractError(f"a PayPal amount is malformed: {exc}", reason="bad_amount") from None


def _purchase(
    capture: dict[str, Any], order: dict[str, Any] | None, money: Any, reason: str | None = None
) -> dict[str, Any]:
    amount, currency = minor_units(money)
    units = _units_for(capture, order)
    invoice = next(
        (
            o.get(f)
            for o in (capture, *units)
            for f in ("invoice_id", "invoice_number")
            if isinstance(o.get(f), str) and o.get(f)
        ),
        None,
    )
    purchase = {
        "id": paypal_id(order["id"] if order else capture.get("id")),
        "payment_id": paypal_id(capture.get("id")),
        "amount": amount,
        "currency": currency,
        "items": _items(capture, units),
        "invoice_number": invoice,
        "reason": reason,
    }
    return {k: v for k, v in purchase.items() if v is not None}


def _units_for(capture: dict[str, Any], order: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The order's purchase units holding this capture (all of them when none says so)."""
    units = [u for u in (order or {}).get("purchase_units") or [] if isinstance(u, dict)]
    mine = [u for u in units if capture.get("id") in _capture_ids(u)]
    return mine or units


def _capture_ids(unit: dict[str, Any]) -> set[Any]:
    return {c.get("id") for c in (unit.get("payments") or {}).get("captures") or []}


def _items(capture: dict[str, Any], units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not units and capture.get("custom_id"):
        return [{"product": capture["custom_id"], "quantity": 1}]
    items = []
    for unit in units:
        # a unit without line items is one item: the unit itself
        for entry in unit.get("items") or [{"unit_amount": unit.get("amount")}]:
            quantity = _quantity(entry.get("quantity", 1))
            price = entry.get("unit_amount")
            item = {
                "product": product_key(unit, entry),
                "quantity": quantity,
                "name": entry.get("name") or unit.get("description"),
                "amount": minor_units(price)[0] * quantity if price else None,
            }
            items.append({k: v for k, v in item.items() if v is not None})
    return items


def product_key(unit: dict[str, Any], item: dict[str, Any]) -> str:
    """What `[products]` is keyed by: the item's sku, else the unit's custom_id, else reference_id."""
    for candidate in (item.get("sku"), unit.get("custom_id"), unit.get("reference_id")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    raise ContractError(
        "a PayPal purchase unit names no sku, custom_id or reference_id", reason="no_product_key"
    )


def _quantity(value: Any) -> int:
    # PayPal sends item quantities as strings ("1")
    if isinstance(value, int | str) and re.fullmatch(r"[1-9][0-9]{0,9}", str(value)):
        return int(value)
    raise ContractError("a PayPal item quantity is malformed", reason="bad_quantity")
