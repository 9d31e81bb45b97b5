"""Teachable: a webhook source (enrollments, transactions) and a destination (enroll, unenroll)."""
