"""The admin API against its own OpenAPI document: schemathesis generates requests for every
operation from `/api/openapi.json` of the running system and checks every answer: no 5xx, a
documented status, the documented content type, a body the schema describes."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.test_delivery_faults import purchase
from tests.support.stack import ADMIN_TOKEN, Stack
from tests.support.waiting import wait_until

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


@pytest.fixture
def with_traffic(live: Stack) -> Stack:
    """A purchase through the whole flow, so searches and traces have something to answer."""
    purchase(live, 2)
    wait_until(
        lambda: requests.get(
            f"{live.receiver.url}/api/events",
            headers=AUTH,
            params={"status": "processed"},
            timeout=10,
        ).json()["data"],
        lambda found: len(found) >= 2,
        timeout=60,
    )
    return live


def test_every_operation_answers_as_documented(with_traffic: Stack) -> None:
    schemathesis.experimental.OPEN_API_3_1.enable()
    schema = schemathesis.from_uri(
        f"{with_traffic.receiver.url}/api/openapi.json", base_url=with_traffic.receiver.url
    )
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 13
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(headers=AUTH, timeout=30)
            case.validate_response(response, checks=CHECKS)

        check()


def test_known_ids_answer_their_documents(with_traffic: Stack) -> None:
    """The generated cases rarely hit an existing id: the existing ones, checked against the
    same document."""
    schemathesis.experimental.OPEN_API_3_1.enable()
    schema = schemathesis.from_uri(
        f"{with_traffic.receiver.url}/api/openapi.json", base_url=with_traffic.receiver.url
    )
    event_id = requests.get(
        f"{with_traffic.receiver.url}/api/events", headers=AUTH, timeout=10
    ).json()["data"][0]["id"]
    for path in ("/api/events/{event_id}", "/api/events/{event_id}/raw"):
        case = schema[path]["GET"].make_case(path_parameters={"event_id": event_id})
        response = case.call(headers=AUTH, timeout=30)
        assert response.status_code == 200
        case.validate_response(response, checks=CHECKS)
