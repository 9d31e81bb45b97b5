"""A small asyncio HTTP/1.1 load generator: pre-built signed requests, N concurrent connections.

Threads and `requests` cost more CPU per request than the receiver itself, and the sender shares
the machine's two cores with the system under test; a keep-alive client on asyncio streams costs
a fraction of that. It speaks only what it needs (POST with Content-Length, read the status line,
headers and a Content-Length body), reconnects when the server closes (gunicorn's sync workers
close after every response), and reports its own errors.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from devtools.simulate import percentile


@dataclass
class Request:
    path: str
    body: bytes
    headers: dict[str, str]
    event_id: str = ""  # the provider's id for the event in the body, for the sender's bookkeeping

    def encode(self, host: str) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(self.body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class LoadReport:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    accepted: list[Request] = field(default_factory=list)
    refused: list[Request] = field(
        default_factory=list
    )  # 5xx or no answer: a provider retries these
    answers: list[tuple[str, int]] = field(default_factory=list)  # (event_id, status) each

    @property
    def per_second(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0

    def percentile(self, share: float) -> float:
        return percentile(self.latencies_ms, share)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed before answering")
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        lowered = name.strip().lower()
        if lowered == "content-length":
            length = int(value.strip())
        elif lowered == "connection" and value.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


async def _sender(
    host: str,
    port: int,
    queue: asyncio.Queue[Request],
    report: LoadReport,
    pace: Callable[[], float],
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while True:
        try:
            request = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        delay = pace()
        if delay > 0:
            await asyncio.sleep(delay)
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            writer.write(request.encode(f"{host}:{port}"))
            status, close = await _read_response(reader)
            report.statuses[status] += 1
            report.answers.append((request.event_id, status))
            (report.accepted if status < 300 else report.refused if status >= 500 else []).append(
                request
            )
            if close:
                writer.close()
                reader, writer = None, None
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            report.errors[type(exc).__name__] += 1
            report.refused.append(request)
            if writer is not None:
                writer.close()
            reader, writer = None, None
        report.sent += 1
        report.latencies_ms.append((time.perf_counter() - started) * 1000)
    if writer is not None:
        writer.close()


def send(
    url: str, requests: Sequence[Request], *, concurrency: int, rate: float = 0.0
) -> LoadReport:
    """Sends every request once over `concurrency` connections, at most `rate` per second."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    report = LoadReport()
    interval = 1.0 / rate if rate > 0 else 0.0
    next_at = [time.perf_counter()]

    def pace() -> float:
        if not interval:
            return 0.0
        slot = max(next_at[0], time.perf_counter())
        next_at[0] = slot + interval
        return slot - time.perf_counter()

    async def run() -> None:
        queue: asyncio.Queue[Request] = asyncio.Queue()
        for request in requests:
            queue.put_nowait(request)
        senders = [_sender(host, port, queue, report, pace) for _ in range(concurrency)]
        await asyncio.gather(*senders)

    started = time.perf_counter()
    asyncio.run(run())
    report.elapsed = time.perf_counter() - started
    return report


def send_until_accepted(
    url: str,
    build: Callable[[], Sequence[Request]],
    *,
    concurrency: int,
    rate: float = 0.0,
    rounds: int = 30,
    pause: float = 2.0,
) -> tuple[LoadReport, set[str]]:
    """Like a provider: what was refused (5xx, no answer) is sent again, freshly signed, until
    every event was accepted or the rounds are spent. Returns the first round's report (with the
    answers of every round) and the ids of every event accepted in any round."""
    pending = list(build())
    accepted: set[str] = set()
    first: LoadReport | None = None
    for _ in range(rounds):
        report = send(url, pending, concurrency=concurrency, rate=rate)
        if first is not None:
            first.answers.extend(report.answers)  # every answer, in the order they came
        first = first or report
        accepted |= {request.event_id for request in report.accepted}
        wanted = {request.event_id for request in report.refused} - accepted
        if not wanted:
            break
        time.sleep(pause)
        pending = [request for request in build() if request.event_id in wanted]
    assert first is not None
    return first, accepted
