"""Waiting for the asynchronous system to settle: poll a condition, fail with what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 60, every: float = 0.2
) -> T:
    deadline = time.monotonic() + timeout
    seen = probe()
    while not done(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled after {timeout} s; last seen: {seen!r}")
        time.sleep(every)
        seen = probe()
    return seen
