"""The admin API's routes: each one parses, calls one `pipeline.ops` function and answers.

Nothing here enrolls, refunds or writes to a provider: a replay goes through the pipeline's own
lanes, rate budgets and ledger. Every request that changes something writes an audit row.
"""

from __future__ import annotations

import re
import time
from typing import Any

from flask import Response

from pipeline.errors import BadQuery, PlanNotFound, PlanRefused
from pipeline.ops import audit, destinations, replays, search, trace
from pipeline.ops.auth import Principal
from pipeline.ops.handles import handle_key
from pipeline.ops.status import status_document
from receivers.api.endpoint import endpoint
from receivers.errors import ApiError
from receivers.state import receiver_state
from schemas import api as schemas


def _query(values: dict[str, Any], **extra: Any) -> search.EventQuery:
    return search.EventQuery.from_filters(values, **extra)


PLAN_ID = re.compile(r"rp_[0-9a-f]{16}")


def _known_id(event_id: int) -> None:
    """An id past PostgreSQL's bigint names nothing: 404, not a failed query."""
    if event_id > schemas.MAX_ID:
        raise ApiError(404, "event_not_found", f"No event has id {event_id}.")


def _key() -> bytes:
    return handle_key(receiver_state().settings)


def _searched(run: Any) -> Any:
    try:
        with receiver_state().engine.connect() as connection:
            return run(connection)
    except BadQuery as exc:
        raise ApiError(400, exc.code, exc.message) from None


@endpoint(
    "/events",
    summary="Search events by e-mail, payment id, provider event id, source, type, status, time",
    query=schemas.EventSearch,
    answer=schemas.EventPage,
)
def list_events(principal: Principal, query: dict[str, Any]) -> Any:
    page = _searched(lambda c: search.search_events(c, _query(query), _key()))
    return {"data": page.data, "next_cursor": page.next_cursor}


@endpoint("/events/<int:event_id>", summary="The whole trace of one event", answer=schemas.Trace)
def get_event(principal: Principal, event_id: int) -> Any:
    _known_id(event_id)
    with receiver_state().engine.connect() as connection:
        found = trace.event_trace(connection, event_id)
    if found is None:
        raise ApiError(404, "event_not_found", f"No event has id {event_id}.")
    return found


@endpoint(
    "/events/<int:event_id>/raw",
    scope="admin",
    summary="The raw body as received (admin scope: it holds personal data)",
    raw=True,
)
def get_event_raw(principal: Principal, event_id: int) -> Response:
    _known_id(event_id)
    state = receiver_state()
    with state.engine.begin() as connection:
        found = trace.raw_body(connection, event_id)
        if found is None:
            raise ApiError(404, "event_not_found", f"No event has id {event_id}.")
        audit.record(
            connection, actor=principal.name, action="event.read_raw", event_ids=[event_id]
        )
    body, content_type = found
    return Response(body, status=200, content_type=content_type)


@endpoint(
    "/events/<int:event_id>/replay",
    method="POST",
    scope="replay",
    summary="Replay one event from fetch or from deliver; runs at once",
    body=schemas.EventReplayRequest,
    answer=schemas.ProgressAnswer,
    status=202,
)
def replay_event(principal: Principal, event_id: int, body: dict[str, Any]) -> Any:
    _known_id(event_id)
    state = receiver_state()
    with state.engine.connect() as connection:
        if trace.raw_body(connection, event_id) is None:
            raise ApiError(404, "event_not_found", f"No event has id {event_id}.")
    mode = "refetch" if body["from_"] == "fetch" else "redeliver"
    planned = replays.plan(
        state.runtime,
        search.EventQuery(event_ids=(event_id,)),
        mode=mode,
        force=body["force"],
        actor=principal.name,
    )
    return replays.execute(
        state.runtime, planned["plan_id"], reason=body["reason"], actor=principal.name
    )


@endpoint(
    "/dead-letters",
    summary="Search dead letters: the event filters plus destination and failure class",
    query=schemas.DeadLetterSearch,
    answer=schemas.DeadLetterPage,
)
def list_dead_letters(principal: Principal, query: dict[str, Any]) -> Any:
    page = _searched(lambda c: search.search_dead_letters(c, _query(query), _key()))
    return {"data": page.data, "next_cursor": page.next_cursor}


@endpoint(
    "/replays",
    method="POST",
    scope="replay",
    summary="Plan a replay: the frozen set, counts, samples, calls and time; nothing is done",
    body=schemas.ReplayRequest,
    answer=schemas.PlanAnswer,
    status=201,
)
def plan_replay(principal: Principal, body: dict[str, Any]) -> Any:
    filters = dict(body["filter"])
    filters.setdefault("destination", body.get("destination"))
    filters.setdefault("failure_class", body.get("failure_class"))
    query = _query(
        filters,
        event_ids=tuple(body.get("event_ids") or ()),
        dead_letter_ids=tuple(body.get("dead_letter_ids") or ()),
    )
    try:
        return replays.plan(
            receiver_state().runtime,
            query,
            mode=body["mode"],
            force=body["force"],
            actor=principal.name,
        )
    except BadQuery as exc:
        raise ApiError(400, exc.code, exc.message) from None
    except PlanRefused as exc:
        raise ApiError(400, exc.code, exc.message) from None


@endpoint(
    "/replays/<plan_id>/execute",
    method="POST",
    scope="replay",
    summary="Run a plan in the background (once: a second call changes nothing)",
    body=schemas.ExecuteRequest,
    answer=schemas.ProgressAnswer,
    status=202,
)
def execute_replay(principal: Principal, plan_id: str, body: dict[str, Any]) -> Any:
    _plan_shaped(plan_id)
    try:
        return replays.execute(
            receiver_state().runtime, plan_id, reason=body["reason"], actor=principal.name
        )
    except PlanNotFound:
        raise _no_plan(plan_id) from None


@endpoint(
    "/replays/<plan_id>",
    summary="A plan's progress and per-item results",
    query=schemas.ProgressQuery,
    answer=schemas.ProgressAnswer,
)
def get_replay(principal: Principal, plan_id: str, query: dict[str, Any]) -> Any:
    _plan_shaped(plan_id)
    try:
        with receiver_state().engine.connect() as connection:
            return replays.progress(connection, plan_id, items=query["items"])
    except PlanNotFound:
        raise _no_plan(plan_id) from None


@endpoint(
    "/replays/<plan_id>",
    method="DELETE",
    scope="replay",
    summary="Cancel a plan: items not yet run are not run",
    answer=schemas.ProgressAnswer,
)
def cancel_replay(principal: Principal, plan_id: str) -> Any:
    _plan_shaped(plan_id)
    try:
        return replays.cancel(receiver_state().runtime, plan_id, actor=principal.name)
    except PlanNotFound:
        raise _no_plan(plan_id) from None


def _plan_shaped(plan_id: str) -> None:
    if not PLAN_ID.fullmatch(plan_id):
        raise _no_plan(plan_id)


def _no_plan(plan_id: str) -> ApiError:
    return ApiError(404, "plan_not_found", "No replay plan has that id.")


@endpoint(
    "/destinations",
    summary="Each destination: paused, circuit, held and open work, rate budget",
    answer=schemas.DestinationList,
)
def list_destinations(principal: Principal) -> Any:
    return {"data": destinations.destinations(receiver_state().runtime)}


def _known(name: str) -> None:
    if name not in receiver_state().config.destinations:
        raise ApiError(404, "destination_not_found", "No destination has that name.")


@endpoint(
    "/destinations/<name>/pause",
    method="POST",
    scope="admin",
    summary="Hold every delivery to this destination until it is resumed",
    body=schemas.PauseRequest,
    answer=schemas.PauseAnswer,
)
def pause_destination(principal: Principal, name: str, body: dict[str, Any]) -> Any:
    _known(name)
    destinations.set_paused(
        receiver_state().runtime, name, paused=True, actor=principal.name, reason=body.get("reason")
    )
    return {"name": name, "paused": True, "released": 0}


@endpoint(
    "/destinations/<name>/resume",
    method="POST",
    scope="admin",
    summary="Resume a destination and release what it held",
    body=schemas.PauseRequest,
    answer=schemas.PauseAnswer,
)
def resume_destination(principal: Principal, name: str, body: dict[str, Any]) -> Any:
    _known(name)
    released = destinations.set_paused(
        receiver_state().runtime,
        name,
        paused=False,
        actor=principal.name,
        reason=body.get("reason"),
    )
    return {"name": name, "paused": False, "released": released}


@endpoint(
    "/status",
    summary="Servers, lanes (depth, oldest age, workers), the periodic jobs, open dead letters",
    answer=schemas.StatusAnswer,
)
def get_status(principal: Principal) -> Any:
    state = receiver_state()
    return status_document(
        state.settings, state.celery, state.engine, now=time.time(), receiver=False
    )


@endpoint(
    "/audit",
    summary="Who changed what, newest first",
    query=schemas.AuditSearch,
    answer=schemas.AuditPage,
)
def list_audit(principal: Principal, query: dict[str, Any]) -> Any:
    try:
        before = search.decode_cursor(query["cursor"]) if query.get("cursor") else None
    except BadQuery as exc:
        raise ApiError(400, exc.code, exc.message) from None
    with receiver_state().engine.connect() as connection:
        rows = audit.entries(
            connection, limit=query["limit"] + 1, before=before, action=query.get("action")
        )
    more = len(rows) > query["limit"]
    rows = rows[: query["limit"]]
    cursor = search.encode_cursor(rows[-1]["id"]) if more and rows else None
    return {"data": rows, "next_cursor": cursor}
