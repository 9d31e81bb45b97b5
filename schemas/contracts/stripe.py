"""Stripe webhook contracts, version 1.

Field lists follow Stripe's published objects (stripe/openapi `fixtures3.json`, commit f6c2a48f);
the fields our mapping reads are required, the rest are merely known. Stripe adds fields often,
so Stripe sources default to `on_unknown_fields = "warn"`.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.contracts.base import contract, nested

CHECKOUT_SESSION_FIELDS = (
    "adaptive_pricing",
    "after_expiration",
    "allow_promotion_codes",
    "amount_subtotal",
    "automatic_tax",
    "billing_address_collection",
    "cancel_url",
    "client_reference_id",
    "client_secret",
    "collected_information",
    "consent",
    "consent_collection",
    "created",
    "currency_conversion",
    "custom_fields",
    "custom_text",
    "customer",
    "customer_account",
    "customer_creation",
    "customer_details",
    "customer_email",
    "discounts",
    "expires_at",
    "integration_identifier",
    "invoice",
    "invoice_creation",
    "livemode",
    "locale",
    "managed_payments",
    "metadata",
    "mode",
    "origin_context",
    "payment_intent",
    "payment_link",
    "payment_method_collection",
    "payment_method_configuration_details",
    "payment_method_options",
    "payment_method_types",
    "permissions",
    "phone_number_collection",
    "recovered_from",
    "saved_payment_method_options",
    "setup_intent",
    "shipping_address_collection",
    "shipping_cost",
    "shipping_options",
    "submit_type",
    "subscription",
    "success_url",
    "total_details",
    "ui_mode",
    "url",
    "wallet_options",
    "line_items",
)
CHARGE_FIELDS = (
    "amount",
    "amount_captured",
    "application",
    "application_fee",
    "application_fee_amount",
    "balance_transaction",
    "billing_details",
    "calculated_statement_descriptor",
    "captured",
    "created",
    "currency",
    "customer",
    "description",
    "disputed",
    "failure_balance_transaction",
    "failure_code",
    "failure_message",
    "fraud_details",
    "livemode",
    "metadata",
    "on_behalf_of",
    "outcome",
    "paid",
    "payment_intent",
    "payment_method",
    "payment_method_details",
    "receipt_email",
    "receipt_number",
    "receipt_url",
    "refunds",
    "review",
    "shipping",
    "source",
    "source_transfer",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "status",
    "transfer_data",
    "transfer_group",
)
DISPUTE_FIELDS = (
    "amount",
    "balance_transactions",
    "created",
    "currency",
    "enhanced_eligibility_types",
    "evidence",
    "evidence_details",
    "is_charge_refundable",
    "livemode",
    "metadata",
    "payment_intent",
    "payment_method_details",
    "reason",
    "status",
)
SUBSCRIPTION_FIELDS = (
    "application",
    "application_fee_percent",
    "automatic_tax",
    "billing_cycle_anchor",
    "billing_cycle_anchor_config",
    "billing_mode",
    "billing_schedules",
    "billing_thresholds",
    "cancel_at",
    "cancel_at_period_end",
    "canceled_at",
    "cancellation_details",
    "collection_method",
    "created",
    "currency",
    "customer_account",
    "days_until_due",
    "default_payment_method",
    "default_source",
    "default_tax_rates",
    "description",
    "discounts",
    "ended_at",
    "invoice_settings",
    "items",
    "latest_invoice",
    "livemode",
    "managed_payments",
    "metadata",
    "next_pending_invoice_item_invoice",
    "on_behalf_of",
    "pause_collection",
    "payment_settings",
    "pending_invoice_item_interval",
    "pending_setup_intent",
    "pending_update",
    "schedule",
    "start_date",
    "test_clock",
    "transfer_data",
    "trial_end",
    "trial_settings",
    "trial_start",
    "current_period_end",
    "current_period_start",
    "plan",
    "quantity",
)
INVOICE_FIELDS = (
    "account_country",
    "account_name",
    "account_tax_ids",
    "amount_due",
    "amount_overpaid",
    "amount_paid",
    "amount_remaining",
    "amount_shipping",
    "application",
    "attempt_count",
    "attempted",
    "auto_advance",
    "automatic_tax",
    "automatically_finalizes_at",
    "collection_method",
    "created",
    "currency",
    "custom_fields",
    "customer_account",
    "customer_address",
    "customer_email",
    "customer_name",
    "customer_phone",
    "customer_shipping",
    "customer_tax_exempt",
    "customer_tax_ids",
    "default_payment_method",
    "default_source",
    "default_tax_rates",
    "description",
    "discounts",
    "due_date",
    "effective_at",
    "ending_balance",
    "footer",
    "from_invoice",
    "hosted_invoice_url",
    "invoice_pdf",
    "issuer",
    "last_finalization_error",
    "latest_revision",
    "lines",
    "livemode",
    "metadata",
    "next_payment_attempt",
    "number",
    "on_behalf_of",
    "parent",
    "payment_settings",
    "period_end",
    "period_start",
    "post_payment_credit_notes_amount",
    "pre_payment_credit_notes_amount",
    "receipt_number",
    "rendering",
    "shipping_cost",
    "shipping_details",
    "starting_balance",
    "statement_descriptor",
    "status",
    "status_transitions",
    "subscription",
    "subtotal",
    "subtotal_excluding_tax",
    "test_clock",
    "total",
    "total_discount_amounts",
    "total_excluding_tax",
    "total_pretax_credit_amounts",
    "total_taxes",
    "webhooks_delivered_at",
)
EVENT_FIELDS = ("api_version", "livemode", "pending_webhooks", "request", "account", "context")


def _object_id(prefix: str) -> fields.Str:
    return fields.Str(required=True, validate=validate.Regexp(rf"^{prefix}_[A-Za-z0-9_]+$"))


def _object(name: str) -> fields.Str:
    return fields.Str(required=True, validate=validate.Equal(name))


CheckoutSessionV1 = contract(
    "CheckoutSessionV1",
    required={
        "id": _object_id("cs"),
        "object": _object("checkout.session"),
        "payment_status": fields.Str(
            required=True, validate=validate.OneOf(["paid", "unpaid", "no_payment_required"])
        ),
        "status": fields.Str(required=True, allow_none=True),
        "amount_total": fields.Int(required=True, allow_none=True),
        "currency": fields.Str(required=True, allow_none=True),
    },
    optional=CHECKOUT_SESSION_FIELDS,
)
ChargeV1 = contract(
    "ChargeV1",
    required={
        "id": _object_id("ch|py"),
        "object": _object("charge"),
        "refunded": fields.Bool(required=True),
        "amount_refunded": fields.Int(required=True),
    },
    optional=CHARGE_FIELDS,
)
DisputeV1 = contract(
    "DisputeV1",
    required={
        "id": _object_id("dp|du"),
        "object": _object("dispute"),
        "charge": fields.Raw(required=True),
    },
    optional=DISPUTE_FIELDS,
)
SubscriptionV1 = contract(
    "SubscriptionV1",
    required={
        "id": _object_id("sub"),
        "object": _object("subscription"),
        "status": fields.Str(required=True),
        "customer": fields.Raw(required=True),
    },
    optional=SUBSCRIPTION_FIELDS,
)
InvoiceV1 = contract(
    "InvoiceV1",
    required={
        "id": _object_id("in"),
        "object": _object("invoice"),
        "customer": fields.Raw(required=True),
        "billing_reason": fields.Str(required=True, allow_none=True),
    },
    optional=INVOICE_FIELDS,
)


def _event(name: str, object_schema: type[Schema]) -> type[Schema]:
    data = contract(
        f"{name}Data",
        required={"object": nested(object_schema, required=True)},
        optional=("previous_attributes",),
    )
    return contract(
        name,
        required={
            "id": _object_id("evt"),
            "object": _object("event"),
            "type": fields.Str(required=True),
            "created": fields.Int(required=True),
            "data": nested(data, required=True),
        },
        optional=EVENT_FIELDS,
    )


CheckoutEventV1 = _event("CheckoutEventV1", CheckoutSessionV1)
# Version 2: the webhook need not carry `payment_status`; finality is read from the session we
# fetch anyway (seen when Stripe thinned "snapshot" payloads; the fetch is the source of truth).
CheckoutSessionV2 = contract(
    "CheckoutSessionV2",
    required={
        "id": _object_id("cs"),
        "object": _object("checkout.session"),
        "status": fields.Str(required=True, allow_none=True),
        "amount_total": fields.Int(required=True, allow_none=True),
        "currency": fields.Str(required=True, allow_none=True),
    },
    optional=(*CHECKOUT_SESSION_FIELDS, "payment_status"),
)
CheckoutEventV2 = _event("CheckoutEventV2", CheckoutSessionV2)
ChargeEventV1 = _event("ChargeEventV1", ChargeV1)
DisputeEventV1 = _event("DisputeEventV1", DisputeV1)
SubscriptionEventV1 = _event("SubscriptionEventV1", SubscriptionV1)
InvoiceEventV1 = _event("InvoiceEventV1", InvoiceV1)

CHECKOUT_VERSIONS = {1: CheckoutEventV1, 2: CheckoutEventV2}
VERSIONS: dict[str, dict[int, type[Schema]]] = {
    "checkout.session.completed": CHECKOUT_VERSIONS,
    "checkout.session.async_payment_succeeded": CHECKOUT_VERSIONS,
    "checkout.session.async_payment_failed": CHECKOUT_VERSIONS,
}

CONTRACTS: dict[str, type[Schema]] = {
    "checkout.session.completed": CheckoutEventV1,
    "checkout.session.async_payment_succeeded": CheckoutEventV1,
    "checkout.session.async_payment_failed": CheckoutEventV1,
    "charge.refunded": ChargeEventV1,
    "charge.dispute.created": DisputeEventV1,
    "customer.subscription.created": SubscriptionEventV1,
    "customer.subscription.updated": SubscriptionEventV1,
    "customer.subscription.deleted": SubscriptionEventV1,
    "invoice.paid": InvoiceEventV1,
    "invoice.payment_failed": InvoiceEventV1,
}
