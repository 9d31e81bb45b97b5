"""The circuit breaker and operator pause, on real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from pipeline.delivery.gates import circuit
from pipeline.providers.mailchimp.destination import DESTINATION as MAILCHIMP_DESTINATION
from tests.support.contexts import destination_config

DESTINATION = destination_config(
    MAILCHIMP_DESTINATION, "email", timeout_seconds=1, circuit_threshold=3, circuit_cooldown=0.3
)


@pytest.fixture
def client(redis_url: str, clean: None) -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(redis_url)
    yield found
    found.close()


def test_it_opens_after_the_threshold_of_consecutive_failures(client: redis.Redis) -> None:
    assert [circuit.record_failure(client, DESTINATION) for _ in range(3)] == [False, False, True]
    assert circuit.gate(client, DESTINATION) == circuit.OPEN


def test_a_success_resets_the_count(client: redis.Redis) -> None:
    circuit.record_failure(client, DESTINATION)
    circuit.record_failure(client, DESTINATION)
    assert circuit.record_success(client, "email") is False  # it was not open
    assert circuit.record_failure(client, DESTINATION) is False
    assert circuit.gate(client, DESTINATION) == circuit.CLOSED


def test_after_the_cooldown_exactly_one_probe_goes_through(client: redis.Redis) -> None:
    for _ in range(3):
        circuit.record_failure(client, DESTINATION)
    time.sleep(0.31)
    assert circuit.gate(client, DESTINATION) == circuit.PROBE
    assert circuit.gate(client, DESTINATION) == circuit.OPEN


def test_a_probe_success_closes_it_and_says_so(client: redis.Redis) -> None:
    for _ in range(3):
        circuit.record_failure(client, DESTINATION)
    assert circuit.record_success(client, "email") is True
    assert circuit.gate(client, DESTINATION) == circuit.CLOSED


def test_a_probe_failure_starts_another_cooldown(client: redis.Redis) -> None:
    for _ in range(3):
        circuit.record_failure(client, DESTINATION)
    time.sleep(0.35)
    assert circuit.gate(client, DESTINATION) == circuit.PROBE
    circuit.record_failure(client, DESTINATION)
    assert circuit.gate(client, DESTINATION) == circuit.OPEN


def test_an_operator_pause_holds_until_resumed(client: redis.Redis) -> None:
    circuit.set_paused(client, "email", True)
    assert circuit.gate(client, DESTINATION) == circuit.PAUSED
    assert circuit.state(client, "email")["paused"] == "yes"
    circuit.set_paused(client, "email", False)
    assert circuit.gate(client, DESTINATION) == circuit.CLOSED
