"""A requests transport adapter that answers from a queue: provider clients tested on their answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import BaseAdapter

Answer = tuple[int, Any, dict[str, str]]


class Canned(BaseAdapter):
    """Answers each request with the next queued (status, body, headers); keeps what was sent.

    With `default`, requests past the queue get it; without, they fail the test (IndexError)."""

    def __init__(self, *answers: Answer, default: Answer | None = None) -> None:
        super().__init__()
        self.answers = list(answers)
        self.default = default
        self.sent: list[requests.PreparedRequest] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.sent.append(request)
        if self.answers or self.default is None:
            status, body, headers = self.answers.pop(0)
        else:
            status, body, headers = self.default
        response = requests.Response()
        response.status_code = status
        response._content = b"" if body is None else json.dumps(body).encode()
        response.headers.update(headers)
        response.url, response.request = request.url or "", request
        return response

    def close(self) -> None:
        pass

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body or b"{}") for r in self.sent]
