"""Thinkific: a webhook source (enrollments, orders) and a destination (enroll, unenroll).

One provider, two directions, sharing one API client (`api.py`); the registry reads `SOURCE` and
`DESTINATION` from here.
"""
