"""Kajabi: a webhook source (purchases, a secret in the URL) and a destination (grant and revoke
offers) over its JSON:API.
"""
