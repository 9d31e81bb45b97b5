"""What every provider's parser shares: JSON and form bodies, and what PostgreSQL cannot store."""

from __future__ import annotations

import pytest

from pipeline.errors import BadPayload
from pipeline.providers.base import parse_form, parse_json


def test_a_json_nul_is_dropped_from_every_string() -> None:
    body = b'{"id": "evt_1\\u0000", "data": {"name\\u0000": ["Ada\\u0000 Lovelace"]}}'
    assert parse_json(body) == {"id": "evt_1", "data": {"name": ["Ada Lovelace"]}}


def test_a_json_body_without_nul_is_returned_as_parsed() -> None:
    assert parse_json(b'{"note": "\\\\u0000 is only text here"}') == {
        "note": "\\u0000 is only text here"
    }


def test_a_utf16_json_body_loses_its_nul_too() -> None:
    assert parse_json('{"name": "Ada\\u0000"}'.encode("utf-16")) == {"name": "Ada"}


def test_a_form_nul_is_dropped_from_keys_and_values() -> None:
    body = b"type=subscribe&data[merges][FNAME]=Ada%00&data[em%00ail]=x"
    assert parse_form(body) == {
        "type": "subscribe",
        "data": {"merges": {"FNAME": "Ada"}, "email": "x"},
    }


def test_malformed_json_is_still_refused() -> None:
    with pytest.raises(BadPayload) as refused:
        parse_json(b'{"id": ')
    assert refused.value.code == "malformed_json"
