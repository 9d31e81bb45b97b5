"""Secrets never reach a log line or a stored text: configured secret values are masked, URLs
lose their query strings and user-info.

`pipeline.logging.redact` is the one redaction every log line, dead letter, trace and attempt
row goes through; it calls `scrub` here. The secrets are the values of the loaded configuration
(`pipeline.config.load` hands them over once per load): every source's signing secrets and every
option that holds a credential. A value is masked as written and URL-encoded, since a secret
may travel in a query string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

from pipeline.storable import NUL

MASK = "[secret]"
# shorter values are not masked: they would blank out ordinary words (no real secret is this short)
MIN_SECRET_CHARS = 8
# scheme://user:password@host -> scheme://host
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")
# a query string right after a URL or a path: urllib3 spells out `url: /mp/collect?api_secret=…`
# (never `[`: a query already masked stays as it is)
_QUERY = re.compile(r"(?<=[\w/.\-])\?[^\s'\"<>()\[\]]+")

_known: set[str] = set()
_pattern: re.Pattern[str] | None = None


def remember_secrets(values: Iterable[str]) -> None:
    """Adds values to mask from now on, process-wide. Earlier ones stay masked: a secret rotated
    out of the config is still a secret in what was already written."""
    global _pattern  # noqa: PLW0603 - one registry per process, read by every redaction
    found = {v for value in values for v in (value, quote(value, safe="")) if v}
    fresh = {v for v in found if len(v) >= MIN_SECRET_CHARS} - _known
    if not fresh:
        return
    _known.update(fresh)
    # longest first, so a secret that contains another is masked whole
    ordered = sorted(_known, key=len, reverse=True)
    _pattern = re.compile("|".join(re.escape(value) for value in ordered))


def mask_secrets(text: str) -> str:
    return text if _pattern is None else _pattern.sub(MASK, text)


def scrub_urls(text: str) -> str:
    """Every URL and path in `text` without its query string or user-info."""
    return _QUERY.sub("?[redacted]", _USERINFO.sub(r"\1", text))


def scrub(text: str) -> str:
    """URLs scrubbed, configured secrets masked, U+0000 dropped (no PostgreSQL text holds it)."""
    return mask_secrets(scrub_urls(text)).replace(NUL, "")
