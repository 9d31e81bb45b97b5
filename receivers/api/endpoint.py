"""`@endpoint`: one admin-API route with its auth, rate limit, validation and answer schema.

Every route is declared once, with the scope it needs, the schema its query or body must match
and the schema of its answer; the same declaration feeds the OpenAPI document, so a route
cannot be served without being described.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, ValidationError

from pipeline.ops.auth import (
    AuthError,
    Principal,
    admit,
    authenticate,
    configured_tokens,
    require_scope,
)
from receivers.errors import ApiError
from receivers.state import receiver_state

bp = Blueprint("api", __name__, url_prefix="/api")


@dataclass(frozen=True)
class Route:
    rule: str
    method: str
    scope: str | None
    summary: str
    query: type[Schema] | None
    body: type[Schema] | None
    answer: type[Schema] | None
    status: int
    raw: bool = False


ROUTES: list[Route] = []


def endpoint(
    rule: str,
    *,
    method: str = "GET",
    scope: str | None = "read",
    summary: str,
    query: type[Schema] | None = None,
    body: type[Schema] | None = None,
    answer: type[Schema] | None = None,
    status: int = 200,
    raw: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`scope=None`: no token needed (the OpenAPI document)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def handle(**path: Any) -> Response:
            principal = authorize(scope) if scope else None
            arguments: dict[str, Any] = {}
            if query is not None:
                arguments["query"] = load(query, request.args.to_dict(flat=True), "query")
            if body is not None:
                arguments["body"] = load(body, json_body(), "body")
            result = view(principal=principal, **arguments, **path)
            if isinstance(result, Response):
                return result
            response = jsonify(answer().dump(result) if answer else result)
            response.status_code = status
            return response

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=handle, methods=[method])
        ROUTES.append(Route(rule, method, scope, summary, query, body, answer, status, raw))
        return handle

    return decorate


def authorize(scope: str) -> Principal:
    state = receiver_state()
    try:
        tokens = configured_tokens(state.settings, state.config.admin)
        principal = authenticate(tokens, request.headers.get("Authorization"))
        require_scope(principal, scope)
        admit(state.redis, principal, state.config.admin)
    except AuthError as exc:
        raise ApiError(exc.status, exc.code, exc.message, retry_after=exc.retry_after) from None
    return principal


def load(schema: type[Schema], data: Any, where: str) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema().load(data)
    except ValidationError as exc:
        raise ApiError(400, f"bad_{where}", first_problem(exc.messages)) from None
    return loaded


def json_body() -> Any:
    if not request.data:
        return {}
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        return json.loads(request.data)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", "The body is not valid JSON.") from None


def first_problem(messages: Any, prefix: str = "") -> str:
    """marshmallow's nested messages as one sentence naming the field."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix
            return first_problem(value, name)
    if isinstance(messages, list) and messages:
        head = messages[0]
        if isinstance(head, (dict, list)):
            return first_problem(head, prefix)
        return f"{prefix}: {head}" if prefix else str(head)
    return f"{prefix}: invalid" if prefix else "The request is invalid."
