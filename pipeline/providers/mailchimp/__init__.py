"""Mailchimp (Marketing API v3): a webhook source (list events, a secret in the URL) and a
destination (subscribe, tag, unsubscribe).
"""
