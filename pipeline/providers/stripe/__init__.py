"""Stripe: signed webhooks in (checkouts, refunds, disputes, subscriptions, invoices), the full
object fetched, canonical events out.
"""
