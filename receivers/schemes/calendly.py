"""Calendly: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 of "<t>.<raw body>" with
the subscription's signing key (developer.calendly.com/api-docs/overview/webhooks/webhook-signatures).

The tolerance is the source's `tolerance_seconds`, checked in both directions; Calendly's own sample
refuses anything older than 3 minutes, which is what our test configuration uses.
"""

from receivers.schemes.timestamped_hmac import TimestampedHmacScheme

SCHEME = TimestampedHmacScheme(header="Calendly-Webhook-Signature")
