"""A Standard Webhooks source (standardwebhooks.com): any sender that signs with webhook-id,
-timestamp and -signature.
"""
