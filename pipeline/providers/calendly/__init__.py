"""Calendly (API v2): a signed webhook source for invitees, each fetched in full (UTC plus the
invitee's zone).
"""
