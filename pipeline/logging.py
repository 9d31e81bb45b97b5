"""Structured logs: one JSON object per line, with the event, task and lane bound as context.

On a terminal (`make run`) the same lines are written as readable text instead, unless
STACKWIRE_LOG_FORMAT says `json`; anything else (docker, a file, a pipe) gets JSON.

Context is bound in Celery's `task_prerun` and cleared in `task_postrun` (see `tasks`), so every
line a task writes names what it was working on. Messages never carry e-mail addresses or
secrets: pass ids and hashes in `extra`, and `redact` anything that came from outside.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

from pipeline.redaction import scrub
from pipeline.settings import Settings

log_context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def bind(**values: Any) -> None:
    log_context.set({**(log_context.get() or {}), **values})


def clear() -> None:
    log_context.set(None)


def bind_event(event_id: int, source: str, trace_id: str | None) -> None:
    """What every line a step writes about an event carries; `trace_id` is the receiver's."""
    bind(event_id=event_id, source=source, trace_id=trace_id)


def bind_delivery(
    *, event_id: int | None, trace_id: str | None, delivery_id: int, action: str, attempt: int
) -> None:
    """The same for a delivery attempt."""
    bind(
        event_id=event_id,
        trace_id=trace_id,
        delivery_id=delivery_id,
        action=action,
        attempt=attempt,
    )


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        entry.update(log_context.get() or {})
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _loggable(value)
        if record.exc_info and record.exc_info[0] is not None:
            # the exception's type only: its message or traceback may carry payload data
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


def _loggable(value: Any) -> Any:
    if isinstance(value, int | float | bool):
        return value
    if isinstance(value, dict):
        # Celery passes its task data here, traceback included: never log that
        value = {k: v for k, v in value.items() if k not in ("traceback", "args", "kwargs")}
    return redact(str(value))


class TextFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = json.loads(super().format(record))
        head = (
            f"{entry.pop('ts')} {entry.pop('level'):7} {entry.pop('component')}: {entry.pop('msg')}"
        )
        entry.pop("logger", None)
        tail = " ".join(f"{k}={v}" for k, v in entry.items())
        return f"{head} {tail}".rstrip()


class Demoted(logging.Filter):
    """Routine lines a library logs at INFO, kept at DEBUG: Beat's "Sending due task" twice per
    sweep interval is noise beside the lines that say something happened."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.getMessage().startswith(self.prefixes):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def writes_json(settings: Settings, stream: TextIO) -> bool:
    if settings.log_format != "auto":
        return settings.log_format == "json"
    return not stream.isatty()


def configure_logging(settings: Settings, *, component: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter if writes_json(settings, sys.stderr) else TextFormatter
    handler.setFormatter(formatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    if settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        # append-only, one line per write: processes sharing a component share the file
        to_file = logging.FileHandler(settings.log_dir / f"{component}.jsonl", delay=True)
        to_file.setFormatter(JsonFormatter(component))
        root.handlers.append(to_file)
    root.setLevel(settings.log_level)
    beat = logging.getLogger("celery.beat")
    beat.filters[:] = [Demoted("Scheduler: Sending due task")]
    # per-task "received"/"succeeded" lines cost more than the tasks; failures still log
    quiet = (
        "urllib3",
        "werkzeug",
        "celery.redirected",
        "kombu",
        "amqp",
        "alembic",
        "celery.app.trace",
        "celery.worker.strategy",
    )
    for noisy in quiet:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


_SECRETish = re.compile(r"\b(sk|rk|whsec|key|token|secret)_[A-Za-z0-9_]{6,}", re.IGNORECASE)


def redact(text: str) -> str:
    """Masks e-mail addresses, key-like strings, the configured secrets and URLs' queries and
    user-info (`pipeline.redaction`) before anything is stored or logged."""
    return _SECRETish.sub("[secret]", _EMAIL.sub("[email]", scrub(text)))
