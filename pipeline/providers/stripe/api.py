"""Reading Stripe's API for the source: the objects behind webhooks, complete and expanded.

Facts (docs.stripe.com/api; stripe-python): the secret key is the HTTP Basic user name; objects
are read at `/v1/<collection>/<id>` with `expand[]`; lists are `{"object": "list", "data",
"has_more"}` and page with `starting_after` (the last id of the page) and `limit` (1 to 100).
A checkout session's `line_items` is includable: present only when expanded, and then only "the
first handful" (10); the full list pages at `GET /v1/checkout/sessions/{id}/line_items`
(docs.stripe.com/api/checkout/sessions/line_items), so a session is read with its line items
paged to the end.

An expansion we asked for that comes back unexpanded (an id, or absent) breaks the contract: it is
a `ContractError` (the event dead-letters as `contract` and is alerted), never read as "nothing
bought".
"""

from __future__ import annotations

from typing import Any

from pipeline.delivery.http import ApiClient
from pipeline.errors import ContractError
from pipeline.providers.base import SourceContext

DEFAULT_API_BASE = "https://api.stripe.com"
LINE_ITEMS_PER_PAGE = 100  # Stripe's maximum `limit`
MAX_LINE_ITEM_PAGES = (
    50  # 5,000 line items: far beyond any checkout; stops a cursor that never ends
)
SESSION_EXPANSIONS = ("line_items", "payment_intent.latest_charge")


def client(ctx: SourceContext) -> ApiClient:
    headers = {}
    if ctx.source.options.get("api_version"):
        headers["Stripe-Version"] = ctx.source.options["api_version"]
    return ApiClient(
        provider="stripe",
        base_url=ctx.source.api_base or DEFAULT_API_BASE,
        session=ctx.http,
        auth=(ctx.source.options["api_key"], ""),
        headers=headers,
    )


def expanded(obj: dict[str, Any], field: str, what: str) -> dict[str, Any]:
    """The expanded object in `field`; an id or nothing there breaks the contract."""
    value = obj.get(field)
    if not isinstance(value, dict):
        raise ContractError(
            f"Stripe answered {what} without the `{field}` expansion we asked for",
            reason="missing_expansion",
        )
    return value


def checkout_session(api: ApiClient, session_id: str) -> dict[str, Any]:
    """The session with every line item and its payment intent's latest charge."""
    params = [("expand[]", path) for path in SESSION_EXPANSIONS]
    found: dict[str, Any] = api.request(
        "GET", f"/v1/checkout/sessions/{session_id}", params=params
    ).json()
    intent = found.get("payment_intent")
    if intent is not None:
        # null when nothing was to be paid; an id means the expansion was dropped
        payment = expanded(found, "payment_intent", "the checkout session")
        if isinstance(payment.get("latest_charge"), str):
            expanded(payment, "latest_charge", "the session's payment intent")
    return _with_all_line_items(api, found)


def session_for_payment(api: ApiClient, payment_intent: str) -> dict[str, Any] | None:
    """The checkout session behind a payment intent, with every line item (what was bought)."""
    params = [("payment_intent", payment_intent), ("expand[]", "data.line_items")]
    sessions = api.request("GET", "/v1/checkout/sessions", params=params).json()
    data = sessions.get("data") or []
    return _with_all_line_items(api, data[0]) if data else None


def subscription(api: ApiClient, subscription_id: str) -> dict[str, Any]:
    """The subscription with its customer (who to grant it to)."""
    params = [("expand[]", "customer")]
    found: dict[str, Any] = api.request(
        "GET", f"/v1/subscriptions/{subscription_id}", params=params
    ).json()
    expanded(found, "customer", "the subscription")
    return found


def _with_all_line_items(api: ApiClient, session: dict[str, Any]) -> dict[str, Any]:
    """The session with its expanded first page of line items completed, page by page."""
    listed = expanded(session, "line_items", "the checkout session")
    items = list(listed.get("data") or [])
    more = bool(listed.get("has_more"))
    path = f"/v1/checkout/sessions/{session['id']}/line_items"
    for _ in range(MAX_LINE_ITEM_PAGES):
        if not more or not items:
            break
        params = {"limit": LINE_ITEMS_PER_PAGE, "starting_after": items[-1]["id"]}
        page = api.request("GET", path, params=params).json()
        items.extend(page.get("data") or [])
        more = bool(page.get("has_more")) and bool(page.get("data"))
    # still `has_more` here (a cursor that never ends) is refused by the mapping, never granted
    session["line_items"] = {**listed, "data": items, "has_more": more}
    return session
