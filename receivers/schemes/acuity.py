"""Acuity Scheduling: `X-Acuity-Signature` = base64 HMAC-SHA256 of the raw form body, keyed with the
account's API key (developers.acuityscheduling.com/docs/webhooks, "Verifying Webhook Requests").

The API key is therefore the source's signing secret: list it in `signing_secrets` (and, for the
fetch, as the `api_key` option). The scheme carries no timestamp, so there is no staleness check;
a replayed body is caught by the event-id rules in pipeline/providers/acuity.py.
"""

from receivers.schemes.body_hmac import BodyHmacScheme

SCHEME = BodyHmacScheme(header="X-Acuity-Signature", encoding="base64")
