"""Never lose an accepted webhook: the event is durable before the 2xx, whatever happens after."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

import pytest
import requests

from devtools import simulate
from pipeline.config.load import load_config
from pipeline.flow import publish
from receivers.app import create_app
from tests.support.db import counts, scalar
from tests.support.servers import free_port
from tests.support.stack import Stack, ThreadedServer
from tests.support.stripe_events import SECRET
from tests.support.waiting import wait_until
from tests.support.web import json_of

PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"


def events_by_status(stack: Stack) -> dict[str, int]:
    return counts(stack.runtime.engine, "SELECT status, count(*) FROM events GROUP BY status")


def test_a_publish_that_fails_after_commit_is_published_by_the_sweeper_once(
    live: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a broker publish that fails, after the commit, for every other webhook
    calls = itertools.count()
    real_publish = publish.DirectPublisher.publish

    def flaky_publish(self: publish.DirectPublisher, *args: Any, **kwargs: Any) -> bool:
        if next(calls) % 2 == 0:
            return False  # as the publisher answers when the broker refused the message
        return real_publish(self, *args, **kwargs)

    monkeypatch.setattr(publish.DirectPublisher, "publish", flaky_publish)
    # When 20 purchases arrive
    events = simulate.create_purchases(live.sandbox.url, 20, price=PRICE, amount=4900)
    report = simulate.send_all(
        f"{live.receiver.url}/webhooks/stripe",
        simulate.plan_deliveries(events, 0, seed=1),
        simulate.stripe_signer(SECRET),
        rate=0,
        concurrency=4,
    )
    assert report.statuses == {202: 20}
    monkeypatch.undo()
    # Then the sweeper finds the ten left `received` and publishes them: all 20 processed, once
    wait_until(lambda: events_by_status(live), lambda s: s == {"processed": 20}, timeout=60)
    delivered = "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
    wait_until(lambda: scalar(live.runtime.engine, delivered), lambda n: n == 60, timeout=60)
    summary = live.sandbox_state.summary()["providers"]
    assert summary["thinkific"]["effects"]["enrollment.created"] == 20
    assert all(p["duplicates"] == {} for p in summary.values())
    assert (
        scalar(live.runtime.engine, "SELECT count(*) FROM events WHERE dispatched_at IS NOT NULL")
        >= 10
    )


def test_with_redis_unreachable_the_webhook_is_still_accepted_and_processed_later(
    live: Stack,
) -> None:
    # Given a receiver whose broker cannot be reached
    settings = replace(live.settings, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(
        settings, config=load_config(settings.config_path, settings.env), configure_logs=False
    )
    cut_off = ThreadedServer(app, free_port())
    try:
        event = simulate.create_purchases(live.sandbox.url, 1, price=PRICE, amount=4900)[0]
        body = json.dumps(event).encode()
        response = requests.post(
            f"{cut_off.url}/webhooks/stripe",
            data=body,
            headers=simulate.stripe_signer(SECRET)(body),
            timeout=30,
        )
    finally:
        cut_off.stop()
    # Then it is accepted (it is durable), and the sweeper, on the real broker, gets it processed
    assert response.status_code == 202
    wait_until(lambda: events_by_status(live), lambda s: s == {"processed": 1}, timeout=60)


def test_with_postgresql_unreachable_the_provider_is_told_to_retry(live: Stack) -> None:
    settings = replace(
        live.settings, database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    )
    app = create_app(settings, config=live.runtime.config, configure_logs=False)
    body = json.dumps(
        simulate.create_purchases(live.sandbox.url, 1, price=PRICE, amount=4900)[0]
    ).encode()
    response = app.test_client().post(
        "/webhooks/stripe", data=body, headers=simulate.stripe_signer(SECRET)(body)
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert json_of(response)["error"]["code"] == "temporarily_unavailable"
    assert "postgres" not in response.get_data(as_text=True).lower()  # no internals leak
    assert scalar(live.runtime.engine, "SELECT count(*) FROM events") == 0


def test_readiness_says_what_is_missing(live: Stack) -> None:
    assert requests.get(f"{live.receiver.url}/readyz", timeout=5).json() == {"status": "ready"}
    assert requests.get(f"{live.receiver.url}/healthz", timeout=5).status_code == 200
    settings = replace(live.settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(settings, config=live.runtime.config, configure_logs=False)
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 503
    assert json_of(answer)["error"]["message"] == "Not ready: Redis does not answer."
