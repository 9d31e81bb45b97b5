"""The circuit breaker and operator pause, on real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from pipeline.config.model import CircuitPolicy
from pipeline.delivery.gates import circuit
from pipeline.providers.mailchimp.destination import DESTINATION as MAILCHIMP_DESTINATION
from tests.support.contexts import destination_config

POLICY = CircuitPolicy(
    failure_rate=0.5, minimum_calls=10, failure_threshold=5, window=30, cooldown=0.3, probes=2
)
DESTINATION = destination_config(MAILCHIMP_DESTINATION, "email", circuit=POLICY)


@pytest.fixture
def client(redis_url: str, clean: None) -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(redis_url)
    yield found
    found.close()


def fail(client: redis.Redis, times: int) -> list[circuit.Transition | None]:
    return [circuit.record_failure(client, DESTINATION) for _ in range(times)]


def succeed(client: redis.Redis, times: int) -> list[circuit.Transition | None]:
    return [circuit.record_success(client, DESTINATION) for _ in range(times)]


def open_it(client: redis.Redis) -> None:
    assert any(fail(client, 10))
    assert circuit.gate(client, DESTINATION).verdict == circuit.OPEN


def test_a_streak_below_the_minimum_volume_never_opens_it(client: redis.Redis) -> None:
    # eight 500s in a row is a blip while fewer than ten calls were made
    assert fail(client, 8) == [None] * 8
    assert circuit.gate(client, DESTINATION).verdict == circuit.CLOSED


def test_it_opens_on_the_failure_rate_over_the_minimum_volume(client: redis.Redis) -> None:
    succeed(client, 5)
    opened = fail(client, 5)
    assert opened[:4] == [None] * 4
    transition = opened[4]
    assert transition is not None
    assert (transition.to_state, transition.calls, transition.failures) == ("opened", 10, 5)
    assert circuit.gate(client, DESTINATION).verdict == circuit.OPEN


def test_failures_among_many_successes_do_not_open_it(client: redis.Redis) -> None:
    succeed(client, 30)
    assert fail(client, 10) == [None] * 10  # 10 of 40 is 25 %, below the 50 % rate
    assert circuit.gate(client, DESTINATION).verdict == circuit.CLOSED


def test_after_the_cooldown_several_probes_go_through_then_it_holds(client: redis.Redis) -> None:
    open_it(client)
    time.sleep(0.35)
    first = circuit.gate(client, DESTINATION)
    assert first.verdict == circuit.PROBE
    assert first.transition is not None and first.transition.to_state == "half_open"
    assert circuit.gate(client, DESTINATION).verdict == circuit.PROBE
    assert circuit.gate(client, DESTINATION).verdict == circuit.OPEN


def test_a_probe_success_closes_it_and_resets_the_cooldown(client: redis.Redis) -> None:
    open_it(client)
    time.sleep(0.35)
    assert circuit.gate(client, DESTINATION).verdict == circuit.PROBE
    transition = circuit.record_success(client, DESTINATION)
    assert transition is not None and transition.to_state == circuit.CLOSED
    assert transition.cooldown == pytest.approx(0.3)
    assert circuit.gate(client, DESTINATION).verdict == circuit.CLOSED


def test_each_failed_probe_doubles_the_cooldown_up_to_its_cap(client: redis.Redis) -> None:
    capped = destination_config(
        MAILCHIMP_DESTINATION,
        "email",
        circuit=CircuitPolicy(minimum_calls=2, failure_threshold=2, cooldown=0.2, max_cooldown=0.5),
    )
    assert any(circuit.record_failure(client, capped) for _ in range(2))
    cooldowns = []
    for wait in (0.25, 0.45, 0.55):
        time.sleep(wait)
        assert circuit.gate(client, capped).verdict == circuit.PROBE
        reopened = circuit.record_failure(client, capped)
        assert reopened is not None and reopened.to_state == "reopened"
        cooldowns.append(reopened.cooldown)
    assert cooldowns == pytest.approx([0.4, 0.5, 0.5])
    assert circuit.gate(client, capped).verdict == circuit.OPEN


def test_a_late_success_while_open_does_not_close_it(client: redis.Redis) -> None:
    open_it(client)
    assert circuit.record_success(client, DESTINATION) is None
    assert circuit.gate(client, DESTINATION).verdict == circuit.OPEN


def test_status_says_when_a_probe_may_go_without_taking_a_token(client: redis.Redis) -> None:
    open_it(client)
    assert circuit.status(client, "email").state == circuit.OPEN
    time.sleep(0.35)
    found = circuit.status(client, "email")
    assert found.state == circuit.READY
    assert found.open_for >= 0.35
    assert circuit.status(client, "email").state == circuit.READY  # nothing was taken
    assert circuit.gate(client, DESTINATION).verdict == circuit.PROBE


def test_an_operator_pause_holds_until_resumed(client: redis.Redis) -> None:
    circuit.set_paused(client, "email", True)
    assert circuit.gate(client, DESTINATION).verdict == circuit.PAUSED
    assert circuit.state(client, "email")["paused"] == "yes"
    circuit.set_paused(client, "email", False)
    assert circuit.gate(client, DESTINATION).verdict == circuit.CLOSED
