"""The gates a delivery passes before a destination is called, and what each answer tells them.

- `circuit`: the destination's breaker and the operator's pause (held work is kept, not tried);
- `ratelimit`: the shared token bucket and the 429 back-off every worker honours;
- `holds`: held deliveries, released when a probe succeeds or the operator resumes;
- `guard`: the three questions the delivery engine asks (hold? after a failure, after a success).
"""
