"""The retry policy: exponential, full jitter, capped; Retry-After wins; the window is enforced."""

from __future__ import annotations

import pytest

from pipeline.delivery.policy import MAX_DELAY, MAX_RETRY_AFTER, backoff, next_delay, within_window


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (20, MAX_DELAY)]
)
def test_backoff_is_uniform_below_an_exponential_ceiling(attempt: int, ceiling: float) -> None:
    assert backoff(attempt, rand=lambda: 1.0) == ceiling
    assert backoff(attempt, rand=lambda: 0.0) == 0.0
    assert backoff(attempt, rand=lambda: 0.5) == ceiling / 2


def test_backoff_never_exceeds_the_cap_even_for_absurd_attempts() -> None:
    assert backoff(10_000, rand=lambda: 1.0) == MAX_DELAY


def test_jitter_spreads_a_herd_of_retries() -> None:
    delays = {round(backoff(8), 3) for _ in range(200)}
    assert len(delays) > 150  # not synchronised


def test_retry_after_from_the_server_wins_plus_a_little_jitter() -> None:
    assert next_delay(1, 30.0, rand=lambda: 0.0) == 30.0
    assert 30.0 <= next_delay(1, 30.0) <= 31.0


def test_an_absurd_retry_after_is_clamped() -> None:
    assert next_delay(1, 10**9, rand=lambda: 0.0) == MAX_RETRY_AFTER


def test_without_retry_after_the_backoff_applies_with_a_floor() -> None:
    assert next_delay(3, None, rand=lambda: 0.0) == 0.05
    assert next_delay(3, None, rand=lambda: 1.0) == 4.0


def test_the_window_allows_a_try_only_if_it_starts_inside() -> None:
    assert within_window(elapsed=100, delay=50, window=200)
    assert not within_window(elapsed=190, delay=50, window=200)
