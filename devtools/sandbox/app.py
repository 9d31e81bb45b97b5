"""The provider sandbox: each provider's documented API, served under `/<provider>`.

No provider can be reached from here, so `stackwire sandbox` stands in for all of them: real paths,
real auth checks, real error bodies, real rate-limit answers, and a record of every call. Point a
source's or destination's `api_base` at `http://127.0.0.1:8100/<provider>` and the client code is
exactly the code that talks to the real provider.

Control API (not a provider's): `/_sandbox/summary`, `/_sandbox/calls`, `/_sandbox/reset`,
`/_sandbox/faults/<provider>` and each emulator's own `/_sandbox/<provider>/…` helpers.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from devtools import sandbox
from devtools.sandbox.state import Fault, SandboxState

NOT_EMULATORS = {"app", "state", "gunicorn_conf", "client"}

ErrorShape = Callable[[int, str], Response]


def create_sandbox_app(state: SandboxState | None = None) -> Flask:
    app = Flask("stackwire-sandbox")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    state = state or SandboxState()
    app.extensions["sandbox"] = state
    for name in emulators():
        module = importlib.import_module(f"devtools.sandbox.{name}")
        blueprint: Blueprint = module.blueprint
        instrument(blueprint, name, module.error_response)
        app.register_blueprint(blueprint, url_prefix=f"/{name}")
        if hasattr(module, "control"):
            app.register_blueprint(module.control, url_prefix=f"/_sandbox/{name}")
    app.register_blueprint(control)
    return app


def emulators() -> list[str]:
    """Every module of this package that emulates a provider (it defines `blueprint`)."""
    names = [m.name for m in pkgutil.iter_modules(sandbox.__path__) if not m.ispkg]
    return sorted(n for n in names if n not in NOT_EMULATORS and not n.startswith("_"))


def sandbox_state() -> SandboxState:
    state: SandboxState = current_app.extensions["sandbox"]
    return state


def set_effect(kind: str, key: str) -> int:
    """Handlers call this for what a real provider would have done; returns its repeat count."""
    g.sandbox_effect = f"{kind}|{key}"
    return sandbox_state().effect(g.sandbox_provider, kind, key)


def instrument(blueprint: Blueprint, provider: str, error: ErrorShape) -> None:
    """Faults before each request of this provider; a record of it after."""
    if getattr(blueprint, "sandbox_instrumented", False):
        # the hooks read the state of whichever app serves the request: once serves every app
        # (Flask refuses new hooks on a blueprint already registered, e.g. by a second app)
        return
    blueprint.sandbox_instrumented = True  # type: ignore[attr-defined]

    @blueprint.before_request
    def _play_faults() -> Response | None:
        g.sandbox_provider = provider
        state = sandbox_state()
        fault = state.faults.get(provider)
        if (
            fault is None
            or not fault.active(time.time())
            or not fault.applies_to(request.method, request.path)
        ):
            return None
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.hang_seconds:
            time.sleep(fault.hang_seconds)
        scripted = state.next_scripted_status(provider)
        if scripted is not None:
            response = error(scripted, "scripted fault")
            return (
                _with_retry_after(response, fault.retry_after)
                if scripted in (429, 503)
                else response
            )
        if fault.rate_limit and state.over_rate_limit(provider, fault.rate_limit, time.time()):
            return _with_retry_after(error(429, "rate limited"), fault.retry_after or 1)
        if fault.status and state.random.random() < fault.rate:
            response = error(fault.status, "injected fault")
            return _with_retry_after(response, fault.retry_after) if fault.retry_after else response
        return None

    @blueprint.after_request
    def _record(response: Response) -> Response:
        sandbox_state().record(
            provider,
            request.method,
            request.path,
            response.status_code,
            idempotency_key=request.headers.get("Idempotency-Key"),
            effect=g.get("sandbox_effect"),
        )
        return response


def _with_retry_after(response: Response, seconds: float | None) -> Response:
    if seconds is not None:
        response.headers["Retry-After"] = str(
            int(seconds) if float(seconds).is_integer() else seconds
        )
    return response


control = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")


@control.get("/summary")
def summary() -> Response:
    return jsonify(sandbox_state().summary())


@control.get("/calls")
def calls() -> Response:
    provider = request.args.get("provider")
    since = int(request.args.get("since", 0))
    return jsonify(calls=sandbox_state().calls_as_dicts(provider, since))


@control.post("/reset")
def reset() -> Response:
    sandbox_state().reset()
    return jsonify(status="reset")


@control.put("/faults/<provider>")
def set_fault(provider: str) -> Response:
    spec: dict[str, Any] = request.get_json(force=True) or {}
    duration = float(spec.pop("duration", 0) or 0)
    fault = Fault(**spec, until=time.time() + duration if duration else 0.0)
    sandbox_state().faults[provider] = fault
    return jsonify(status="set", provider=provider)


@control.delete("/faults/<provider>")
def clear_fault(provider: str) -> Response:
    sandbox_state().faults.pop(provider, None)
    return jsonify(status="cleared", provider=provider)


@control.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")
