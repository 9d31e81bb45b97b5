"""What PostgreSQL can store: no U+0000 in any text, no `\\u0000` in any jsonb."""

from __future__ import annotations

import json

from pipeline.storable import json_text, strip_nul


def test_nul_is_dropped_from_every_string_keys_included() -> None:
    value = {"na\x00me": ["Ada\x00 Lovelace", ("x\x00",)], "n": 1, "none": None}
    assert strip_nul(value) == {"name": ["Ada Lovelace", ("x",)], "n": 1, "none": None}


def test_json_text_never_holds_an_escaped_nul() -> None:
    assert json.loads(json_text({"name": "Ada\x00"})) == {"name": "Ada"}


def test_json_text_keeps_a_literal_backslash_u0000() -> None:
    # the text "\u0000" (a backslash and five characters) is no NUL: it survives
    literal = {"note": "\\u0000"}
    assert json.loads(json_text(literal)) == literal


def test_json_text_strips_nul_from_values_it_stringifies() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd\x00"

    assert json.loads(json_text({"v": Odd(), "w": "w\x00"})) == {"v": "odd", "w": "w"}
