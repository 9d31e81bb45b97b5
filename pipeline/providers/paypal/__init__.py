"""PayPal (REST v2): a webhook source verified through PayPal's verify-webhook-signature API, with
captures, refunds and orders fetched.
"""
