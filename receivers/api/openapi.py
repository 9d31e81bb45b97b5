"""`GET /api/openapi.json`: OpenAPI 3.1 built by apispec from the routes' own schemas."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import jsonify
from flask.typing import ResponseReturnValue

from receivers.api.endpoint import ROUTES, Route, bp
from schemas.api import ErrorAnswer

_PATH_PARAMETER = re.compile(r"<(?:(int):)?([a-z_]+)>")
ERRORS = {
    400: "The request is invalid: a code and one sentence say why.",
    401: "No token, or not a valid one.",
    403: "The admin API is off, or the token lacks the scope.",
    404: "Nothing has that id.",
    429: "Too many requests with this token; see Retry-After.",
}


@bp.route("/openapi.json")
def openapi_document() -> ResponseReturnValue:
    return jsonify(build_spec())


@cache
def build_spec() -> dict[str, Any]:
    spec = APISpec(
        title="Stackwire admin API",
        version="1",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": "Search, trace and replay events; pause destinations; audit."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorAnswer)
    by_path: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        path = "/api" + _PATH_PARAMETER.sub(r"{\2}", route.rule)
        by_path.setdefault(path, {})[route.method.lower()] = _operation(route)
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(route: Route) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "in": "path",
            "name": name,
            "required": True,
            "schema": ({"type": "integer", "minimum": 1} if kind == "int" else {"type": "string"}),
        }
        for kind, name in _PATH_PARAMETER.findall(route.rule)
    ]
    if route.query is not None:
        parameters.append({"in": "query", "schema": route.query})
    success: dict[str, Any] = {"description": route.summary}
    if route.raw:
        # the body exactly as the provider sent it, with the content type it came with
        success["content"] = {"*/*": {"schema": {}}}
    elif route.answer is not None:
        success["content"] = {"application/json": {"schema": route.answer}}
    responses: dict[str, Any] = {str(route.status): success}
    for status, text in ERRORS.items():
        responses[str(status)] = {
            "description": text,
            "content": {"application/json": {"schema": "Error"}},
        }
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.rule.strip("/").replace("/", "_") + "_" + route.method.lower(),
        "parameters": parameters,
        "responses": responses,
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": route.body}},
        }
    if route.scope:
        operation["security"] = [{"bearer": []}]
        operation["description"] = f"Needs a token with the `{route.scope}` scope."
    return operation
