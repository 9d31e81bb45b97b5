"""The shared token bucket, on real Redis: rate, burst, and a 429 pause every worker sees."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from pipeline.delivery.gates.ratelimit import back_off, take
from pipeline.providers.thinkific.destination import DESTINATION as THINKIFIC_DESTINATION
from tests.support.contexts import destination_config

DESTINATION = destination_config(
    THINKIFIC_DESTINATION,
    "courses",
    rate_limit=10.0,
    burst=2,
    timeout_seconds=1,
)


@pytest.fixture
def client(redis_url: str, clean: None) -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(redis_url)
    yield found
    found.close()


def test_the_burst_is_available_at_once_then_tokens_come_at_the_rate(client: redis.Redis) -> None:
    assert [take(client, DESTINATION) for _ in range(2)] == [0.0, 0.0]
    wait = take(client, DESTINATION)
    assert 0.05 < wait <= 0.1  # one token every 100 ms at 10/s
    time.sleep(wait)
    assert take(client, DESTINATION) == 0.0


def test_a_wait_takes_nothing(client: redis.Redis) -> None:
    take(client, DESTINATION), take(client, DESTINATION)
    first, second = take(client, DESTINATION), take(client, DESTINATION)
    assert first > 0 and second > 0
    assert abs(first - second) < 0.02  # asking again did not push the next token further away


def test_over_a_second_no_more_than_rate_plus_burst_pass(client: redis.Redis) -> None:
    passed, deadline = 0, time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if take(client, DESTINATION) == 0.0:
            passed += 1
    assert 10 <= passed <= 12


def test_a_pause_stops_every_caller_until_it_ends(client: redis.Redis) -> None:
    back_off(client, "courses", 0.3)
    assert 0.2 < take(client, DESTINATION) <= 0.3
    unlimited = replace(DESTINATION, rate_limit=None)
    assert take(client, unlimited) > 0.2  # a 429 pauses even a destination without a rate limit
    time.sleep(0.31)
    assert take(client, DESTINATION) == 0.0
    assert take(client, unlimited) == 0.0


def test_a_shorter_pause_never_shortens_a_longer_one(client: redis.Redis) -> None:
    back_off(client, "courses", 1.0)
    back_off(client, "courses", 0.1)
    assert take(client, DESTINATION) > 0.8
