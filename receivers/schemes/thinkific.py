"""Thinkific: `X-Thinkific-Hmac-Sha256`, hex HMAC-SHA256 of the raw body keyed with the site's API
key or the app's client secret (support.thinkific.dev "Using Webhooks", 4422685850775). No
timestamp is signed, so replays are caught by the event-id dedupe alone."""

from receivers.schemes.body_hmac import BodyHmacScheme

SCHEME = BodyHmacScheme(header="X-Thinkific-Hmac-Sha256", encoding="hex")
