"""Slack (incoming webhooks): a destination that posts a message about an event, never a raw e-mail
address.
"""
