"""Kit webhook endpoints: `X-Kit-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`.

developers.kit.com/webhooks/verifying-signatures: `v1` is the hex HMAC-SHA256 of "<t>.<raw body>"
keyed with the endpoint's secret; during a secret rotation the header carries one `v1` per valid
secret; Kit re-signs every retry at send time and suggests a 5-minute tolerance. That is exactly
the `t=…,v1=…` building block Stripe uses. Kit's legacy webhooks are not signed (`url_secret`).
"""

from receivers.schemes.timestamped_hmac import TimestampedHmacScheme

SCHEME = TimestampedHmacScheme(header="X-Kit-Signature")
