"""`stackwire bench` and the fault-injection suite: the whole system run as real processes."""

from __future__ import annotations
