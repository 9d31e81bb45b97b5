"""Reading a Flask test client's answers: the JSON body, typed for the test that indexes into it."""

from __future__ import annotations

from typing import Any

from werkzeug.test import TestResponse


def json_of(response: TestResponse) -> Any:
    """The answer's parsed JSON body (`response.json`), failing the test when there is none."""
    found = response.json
    assert found is not None, f"{response.status}: no JSON body in {response.data[:200]!r}"
    return found
