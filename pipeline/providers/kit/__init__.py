"""Kit (formerly ConvertKit), API v4: two webhook sources and a destination.

- `kit`: webhook endpoints (`/v4/webhook_endpoints`), signed with `X-Kit-Signature` (source.py);
- `kit_legacy`: the legacy webhooks (`/v4/webhooks`), unsigned, one event per configured URL;
- the destination `kit`: subscribe, tag, unsubscribe (destination.py).
"""
