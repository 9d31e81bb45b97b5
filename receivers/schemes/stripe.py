"""Stripe: `Stripe-Signature: t=…,v1=…` (docs.stripe.com/webhooks/signatures; stripe-python `_webhook.py`)."""

from receivers.schemes.timestamped_hmac import TimestampedHmacScheme

SCHEME = TimestampedHmacScheme(header="Stripe-Signature")
