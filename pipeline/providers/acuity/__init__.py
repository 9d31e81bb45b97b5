"""Acuity Scheduling: a signed webhook source for appointments, each fetched in full (UTC plus the
attendee's zone).
"""
