"""Webhook payload contracts: what we rely on is required, what we know is listed, the rest is drift.

A contract is a marshmallow schema with `unknown = RAISE` at every level we model. Checking a
payload sorts marshmallow's errors into three kinds: a required field that vanished (the event is
quarantined), a field of the wrong type (quarantined too) and a field nobody listed (drift:
recorded, then accepted or quarantined as the source's `on_unknown_fields` says).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields

UNKNOWN = "Unknown field."
MISSING = "Missing data for required field."


@dataclass(frozen=True)
class ContractReport:
    missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return bool(self.missing or self.invalid)


@cache
def _instance(schema: type[Schema]) -> Schema:
    # building a schema deep-copies its declared fields; one instance per contract is reused
    return schema()


def check(schema: type[Schema], payload: Any) -> ContractReport:
    try:
        _instance(schema).load(payload)
    except ValidationError as exc:
        report = ContractReport()
        _sort(exc.messages, "", report)
        return report
    return ContractReport()


def _sort(messages: Any, path: str, report: ContractReport) -> None:
    if isinstance(messages, Mapping):
        for key, inner in messages.items():
            child = path if key == "_schema" else f"{path}.{key}" if path else str(key)
            _sort(inner, child, report)
        return
    for message in messages if isinstance(messages, list) else [messages]:
        if isinstance(message, Mapping | list):
            _sort(message, path, report)
        elif message == UNKNOWN:
            report.unknown.append(path)
        elif message == MISSING:
            report.missing.append(path)
        else:
            report.invalid.append(f"{path}: {message}")


def known(*names: str) -> dict[str, fields.Field]:
    """Fields we know exist and do not rely on: any value, may be absent."""
    return {name: fields.Raw(allow_none=True) for name in names}


def contract(
    name: str,
    required: Mapping[str, fields.Field] | None = None,
    optional: Iterable[str] = (),
    **extra: fields.Field,
) -> type[Schema]:
    """Builds a strict schema class: `required` fields we rely on, `optional` ones we merely know."""
    attrs: dict[str, Any] = {**known(*optional), **(required or {}), **extra}
    attrs["Meta"] = type("Meta", (), {"unknown": RAISE})
    return type(name, (Schema,), attrs)


def nested(schema: type[Schema], **kwargs: Any) -> fields.Nested:
    return fields.Nested(schema, **kwargs)
