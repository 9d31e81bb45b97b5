"""Outbound HTTP: one session per process, one helper that decides what is retried.

Every provider client goes through `ApiClient.request`, which classifies the answer (saleor's
rule: 2xx done; 429, 5xx, timeouts and connection errors retried; 3xx and other 4xx never) and
keeps a redacted note of the last exchange for the attempt row.

A transport error's own text spells out the URL (urllib3: `Max retries exceeded with url:
/mp/collect?api_secret=…`), and a dead letter keeps the formatted exception chain: the error we
chain instead carries that text without query strings or user-info, and without the path when the
path is the secret (a Slack, Zapier or Make hook URL: `shown_path`).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from pipeline.errors import ConfigurationError, ContractError, PermanentError, RetryableError
from pipeline.logging import redact
from pipeline.redaction import scrub_urls
from pipeline.settings import Settings

EXCERPT_CHARS = 300


def build_session(settings: Settings | None = None, pool_size: int = 10) -> requests.Session:
    settings = settings or Settings()
    session = requests.Session()
    # proxies and the CA bundle come from the settings, read once, instead of requests scanning
    # the whole environment on every call (what it does when trust_env is on)
    session.trust_env = False
    session.proxies.update(settings.proxies)
    session.verify = settings.ca_bundle or True
    # no automatic retries: the pipeline's own policy decides, and records each try
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "Stackwire/0.1 (+https://github.com/stackwire)"
    return session


@dataclass
class Exchange:
    """What the last request sent and got back, redacted, for the attempt trace."""

    method: str = ""
    path: str = ""
    status: int | None = None
    excerpt: str = ""
    duration_ms: float = 0.0

    @property
    def request_line(self) -> str:
        return redact(f"{self.method} {self.path}")


class TransportError(Exception):
    """What requests raised, retold without the secrets its text may hold (see the docstring)."""

    @classmethod
    def of(
        cls, exc: requests.RequestException, path: str, shown_path: str | None
    ) -> TransportError:
        told = str(exc)
        if shown_path is not None and path:
            told = told.replace(path, shown_path)
        return cls(f"{type(exc).__name__}: {redact(scrub_urls(told))}"[:1000])


REDACTED_PATH = "/[redacted]"


@dataclass
class CallScope:
    """Bound by the delivery engine around one action: every request made through an ApiClient
    takes a token from the destination's shared rate limit first, and leaves its exchange here
    for the attempt row."""

    throttle: Callable[[], None] | None = None
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def last(self) -> Exchange | None:
        return self.exchanges[-1] if self.exchanges else None


_scope: ContextVar[CallScope | None] = ContextVar("http_call_scope", default=None)


@contextmanager
def call_scope(throttle: Callable[[], None] | None = None) -> Iterator[CallScope]:
    scope = CallScope(throttle)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(when - (now if now is not None else time.time()), 0.0)


def raise_for_answer(response: requests.Response, *, provider: str) -> None:
    """Raises the pipeline error an HTTP answer means; returns for 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    summary = f"{provider} answered {status}"
    should_retry = response.headers.get("Stripe-Should-Retry")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if should_retry == "true" or status in (408, 409, 425, 429) or status >= 500:
        if should_retry == "false":
            raise PermanentError(summary, reason=f"http_{status}", http_status=status)
        raise RetryableError(
            summary, retry_after=retry_after, reason=f"http_{status}", http_status=status
        )
    if status in (401, 403):
        raise ConfigurationError(
            f"{summary}: the credentials in the config were refused",
            reason=f"http_{status}",
            http_status=status,
        )
    raise PermanentError(summary, reason=f"http_{status}", http_status=status)


@dataclass
class ApiClient:
    """A provider's base URL, auth and timeout, bound to the process's shared session."""

    provider: str
    base_url: str
    session: requests.Session
    timeout: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    # what attempt rows and traces show instead of the path, when the path is the secret
    shown_path: str | None = None
    last: Exchange = field(default_factory=Exchange)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> requests.Response:
        """Sends one request; raises RetryableError/PermanentError unless 2xx or in `accept`."""
        url = self.base_url + path
        if (path and not path.startswith("/")) or not same_origin(url, self.base_url):
            raise ContractError(
                f"refusing a request path outside {self.provider}'s api_base",
                reason="bad_request_path",
            )
        merged = {**self.headers, **(headers or {})}
        scope = _scope.get()
        if scope is not None and scope.throttle is not None:
            scope.throttle()  # may sleep briefly, or raise Throttled to defer the whole action
        started = time.perf_counter()
        path = urlsplit(url).path
        self.last = Exchange(method=method, path=self.shown_path or path)
        if scope is not None:
            scope.exchanges.append(self.last)
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=merged,
                auth=self.auth,
                timeout=(min(self.timeout, 5.0), self.timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            self.last.duration_ms = (time.perf_counter() - started) * 1000
            raise self._transport_failure(exc) from TransportError.of(exc, path, self.shown_path)
        self.last.duration_ms = (time.perf_counter() - started) * 1000
        self.last.status = response.status_code
        self.last.excerpt = redact(response.text[:EXCERPT_CHARS])
        if response.status_code not in accept:
            raise_for_answer(response, provider=self.provider)
        return response

    def _transport_failure(self, exc: requests.RequestException) -> RetryableError:
        if isinstance(exc, requests.Timeout):
            return RetryableError(f"{self.provider} timed out", reason="timeout")
        if isinstance(exc, requests.ConnectionError):
            return RetryableError(
                f"{self.provider} refused or dropped the connection", reason="connection_error"
            )
        # a truncated or undecodable answer: transport trouble, not a verdict on the request
        return RetryableError(f"{self.provider}: {type(exc).__name__}", reason="transport_error")


def same_origin(url: str, base_url: str) -> bool:
    """True when `url` has exactly the scheme and host (and port) of the configured base.

    A URL found inside a payload is followed only then: nothing in a payload chooses where we connect.
    """
    candidate, base = urlsplit(url), urlsplit(base_url)
    return (candidate.scheme, candidate.netloc) == (base.scheme, base.netloc)
