"""The operator's commands: search, trace, dead letters, replay plans, destinations, audit.

Each talks to PostgreSQL and Redis directly (beside `make run`, through its run file) and calls
the same `pipeline.ops` functions as the admin API. Tables and progress bars for a terminal;
`--json` everywhere for scripts, with the cursor. Exit codes: 0 done, 1 partial failure (or a
server that does not answer), 2 bad usage.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from pipeline.cli import render


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def runtime() -> Any:
    from pipeline.cli import build_runtime

    return build_runtime()


def emit(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def moment(value: str | None) -> datetime | None:
    """`2h`, `30m`, `7d` ago, or an ISO 8601 time (UTC when it names no offset)."""
    if not value:
        return None
    from marshmallow import ValidationError

    from schemas.config import parse_duration

    with contextlib.suppress(ValidationError):  # not a duration: an ISO time, then
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a duration (2h) nor a time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def event_filters(command: Any) -> Any:
    """The event filters, shared by `events search`, `dlq ls` and `replay plan`."""
    options = [
        click.option("--email", help="The buyer's e-mail (matched on its keyed hash)."),
        click.option("--payment-id", help="Stripe payment intent or charge, PayPal capture."),
        click.option("--provider-event-id", help="The provider's own event id (evt_…)."),
        click.option("--source", help="A source name from the config."),
        click.option("--type", "type_", help="Provider or canonical type; * and ? globs."),
        click.option("--since", help="2h, 30m, 7d, or an ISO time."),
        click.option("--until", help="2h, 30m, 7d, or an ISO time."),
        click.option("--q", help="JSON the canonical event contains: '{\"purchase\":{…}}'."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_query(**values: Any) -> Any:
    from pipeline.ops.search import EventQuery

    q = values.get("q")
    if q:
        try:
            q = json.loads(q)
        except ValueError:
            raise click.BadParameter("--q must be a JSON object") from None
        if not isinstance(q, dict):
            raise click.BadParameter("--q must be a JSON object")
    return EventQuery.from_filters(
        {
            **values,
            "type": values.get("type_"),
            "since": moment(values.get("since")),
            "until": moment(values.get("until")),
            "q": q or None,
        },
        event_ids=tuple(values.get("event_ids") or ()),
        dead_letter_ids=tuple(values.get("dead_letter_ids") or ()),
    )


def searched(run: Any) -> Any:
    from pipeline.errors import BadQuery

    try:
        return run()
    except BadQuery as exc:
        raise click.UsageError(exc.message) from None


as_json = click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")


# ---- events and trace ----------------------------------------------------------------------


@click.group()
def events() -> None:
    """Find events by what you know: an e-mail, a payment id, an event id."""


@events.command("search")
@event_filters
@click.option("--status", help="received, verified, processed, waiting, ignored, failed…")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--cursor", help="The next_cursor of a previous page.")
@as_json
def events_search(as_json: bool, **values: Any) -> None:
    """Newest first; --json gives the page and its next_cursor."""
    from pipeline.ops.handles import handle_key
    from pipeline.ops.search import search_events

    rt = runtime()
    query = build_query(**values)
    with rt.engine.connect() as connection:
        page = searched(lambda: search_events(connection, query, handle_key(rt.settings)))
    if as_json:
        emit({"data": page.data, "next_cursor": page.next_cursor})
        return
    render.events_table(page.data, page.next_cursor)


@click.command()
@click.argument("reference")
@click.option("--logs/--no-logs", default=True, help="Show this host's log lines of the event.")
@click.option("--max-events", type=click.IntRange(1, 50), default=5, show_default=True)
@as_json
def trace(reference: str, logs: bool, max_events: int, as_json: bool) -> None:
    """A readable timeline of an event: REFERENCE is an event id, a provider event id, an
    e-mail or a payment id (every event it names, newest first)."""
    from pipeline.ops.handles import handle_key
    from pipeline.ops.logfiles import lines_of
    from pipeline.ops.search import resolve_reference
    from pipeline.ops.trace import event_trace

    rt = runtime()
    with rt.engine.connect() as connection:
        ids = searched(lambda: resolve_reference(connection, reference, handle_key(rt.settings)))
        traces = [event_trace(connection, event_id) for event_id in ids[:max_events]]
    found = [t for t in traces if t is not None]
    if not found:
        raise click.ClickException(f"no event matches {reference!r}")
    log_dir = rt.settings.log_dir or rt.settings.data_dir / "logs"
    for document in found:
        event = document["event"]
        document["log_lines"] = (
            lines_of(log_dir, event_id=event["id"], trace_id=event["trace_id"]) if logs else []
        )
    if as_json:
        emit({"data": found, "more": max(0, len(ids) - max_events)})
        return
    for document in found:
        render.timeline(document)
    if len(ids) > max_events:
        click.echo(f"… and {len(ids) - max_events} more; narrow the reference or --max-events")


# ---- dead letters --------------------------------------------------------------------------


@click.group()
def dlq() -> None:
    """Inspect and replay the dead-letter queue."""


def _dead_letters(as_json: bool, show_all: bool, **values: Any) -> None:
    from pipeline.ops.handles import handle_key
    from pipeline.ops.search import search_dead_letters

    rt = runtime()
    values["status"] = None if show_all else "open"
    query = build_query(**values)
    with rt.engine.connect() as connection:
        page = searched(lambda: search_dead_letters(connection, query, handle_key(rt.settings)))
    if as_json:
        emit({"data": page.data, "next_cursor": page.next_cursor})
        return
    render.dead_letters_table(page.data, page.next_cursor)


def dead_letter_filters(command: Any) -> Any:
    command = click.option("--destination", help="A destination name from the config.")(command)
    command = click.option("--failure-class", help="configuration, retryable, contract…")(command)
    command = click.option("--all", "show_all", is_flag=True, help="Replayed ones too.")(command)
    command = click.option("--limit", type=click.IntRange(1, 200), default=50)(command)
    command = click.option("--cursor", help="The next_cursor of a previous page.")(command)
    return event_filters(command)


@dlq.command("ls")
@dead_letter_filters
@as_json
def dlq_ls(as_json: bool, show_all: bool, **values: Any) -> None:
    """Open dead letters, newest first (--all: replayed ones too)."""
    _dead_letters(as_json, show_all, **values)


@dlq.command("list", hidden=True)
@dead_letter_filters
@as_json
def dlq_list(as_json: bool, show_all: bool, **values: Any) -> None:
    """The same as `dlq ls`."""
    _dead_letters(as_json, show_all, **values)


@dlq.command("show")
@click.argument("dead_letter_id", type=click.IntRange(1))
@as_json
def dlq_show(dead_letter_id: int, as_json: bool) -> None:
    """One dead letter with its event's trace."""
    from pipeline.ops.handles import handle_key
    from pipeline.ops.search import EventQuery, search_dead_letters
    from pipeline.ops.trace import event_trace

    rt = runtime()
    query = EventQuery(dead_letter_ids=(dead_letter_id,), limit=1)
    with rt.engine.connect() as connection:
        found = search_dead_letters(connection, query, handle_key(rt.settings)).data
        if not found:
            raise click.ClickException(f"no dead letter has id {dead_letter_id}")
        document = event_trace(connection, found[0]["event_id"])
    if as_json:
        emit({"dead_letter": found[0], "trace": document})
        return
    render.dead_letters_table(found, None)
    if document is not None:
        render.timeline(document)


@dlq.command("replay")
@click.argument("dead_letter_ids", type=click.IntRange(1), nargs=-1, required=True)
@click.option("--reason", default="replay from the command line", show_default=True)
@as_json
def dlq_replay(dead_letter_ids: tuple[int, ...], reason: str, as_json: bool) -> None:
    """Replay these dead letters now (a plan of exactly them, executed and audited)."""
    from pipeline.ops import replays
    from pipeline.ops.search import EventQuery

    rt = runtime()
    query = EventQuery(dead_letter_ids=dead_letter_ids)
    planned = replays.plan(rt, query, mode="resume", force=False, actor=actor())
    executed = replays.execute(rt, planned["plan_id"], reason=reason, actor=actor())
    if as_json:
        emit(executed)
    else:
        render.plan(executed)


# ---- replay plans --------------------------------------------------------------------------


@click.group()
def replay() -> None:
    """Bulk replay: `plan` shows what would happen, `execute` does it, once."""


@replay.command("plan")
@event_filters
@click.option("--status", help="The events' status (resume: the dead letters are open ones).")
@click.option("--destination", help="Only this destination's deliveries.")
@click.option("--failure-class", help="Only failures of this class.")
@click.option("--event-id", "event_ids", type=click.IntRange(1), multiple=True)
@click.option("--dead-letter-id", "dead_letter_ids", type=click.IntRange(1), multiple=True)
@click.option(
    "--mode",
    type=click.Choice(["resume", "redeliver", "reroute"]),
    default="resume",
    show_default=True,
    help="resume: from the failed step; redeliver: the same action, same key; reroute: "
    "today's flows.",
)
@click.option("--force", is_flag=True, help="Send actions already delivered again (same key).")
@as_json
def replay_plan(as_json: bool, mode: str, force: bool, **values: Any) -> None:
    """Freeze what the filters match and show the plan; nothing is replayed yet."""
    from pipeline.errors import PlanRefused
    from pipeline.ops import replays

    rt = runtime()
    query = build_query(**values)
    if mode != "resume" and not query.filters():
        raise click.UsageError("a redeliver or reroute plan needs a filter or ids")
    try:
        planned = searched(lambda: replays.plan(rt, query, mode=mode, force=force, actor=actor()))
    except PlanRefused as exc:
        raise click.UsageError(exc.message) from None
    if as_json:
        emit(planned)
        return
    render.plan(planned)
    click.echo(f"next: stackwire replay execute {planned['plan_id']} --reason '…'")


@replay.command("execute")
@click.argument("plan_id")
@click.option("--reason", required=True, help="Why: kept in the audit log.")
@click.option("--yes", is_flag=True, help="Do not ask (required when not on a terminal).")
@click.option("--wait/--no-wait", default=True, help="Follow the progress until it is done.")
@as_json
def replay_execute(plan_id: str, reason: str, yes: bool, wait: bool, as_json: bool) -> None:
    """Run a plan through the normal lanes and rate limits; a second run changes nothing."""
    from pipeline.errors import PlanNotFound
    from pipeline.ops import replays

    rt = runtime()
    try:
        with rt.engine.connect() as connection:
            current = replays.progress(connection, plan_id, items=0)
    except PlanNotFound:
        raise click.ClickException(f"no replay plan has id {plan_id!r}") from None
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("--yes is required when not on a terminal")
        click.confirm(
            f"Replay {current['count']} items of {plan_id} ({current['mode']})?", abort=True
        )
    executed = replays.execute(rt, plan_id, reason=reason, actor=actor())
    if wait and not executed.get("already"):
        executed = follow(rt, plan_id, show=not as_json)
    if as_json:
        emit(executed)
    else:
        render.plan(executed)
    sys.exit(exit_code(executed))


def follow(rt: Any, plan_id: str, *, show: bool, timeout: float = 3600) -> dict[str, Any]:
    from pipeline.ops import replays

    deadline = time.monotonic() + timeout
    with render.progress(show) as bar:
        while True:
            with rt.engine.connect() as connection:
                current = replays.progress(connection, plan_id, items=0)
            bar(current["done"], current["count"])
            if current["status"] in ("done", "cancelled") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    with rt.engine.connect() as connection:
        return replays.progress(connection, plan_id, items=1000)


# outcomes that are not a failure: done, or nothing to do
FINE = {"replayed", "redelivered", "refetched", "already_delivered", "nothing_new"}


def exit_code(progress: dict[str, Any]) -> int:
    outcomes = progress.get("by_outcome", {})
    bad = {o: n for o, n in outcomes.items() if o.split(":", 1)[0] not in FINE | {"planned"}}
    return 1 if bad else 0


@replay.command("status")
@click.argument("plan_id")
@click.option("--items", type=click.IntRange(0, 1000), default=20, show_default=True)
@as_json
def replay_status(plan_id: str, items: int, as_json: bool) -> None:
    """A plan's progress and its items' results."""
    from pipeline.errors import PlanNotFound
    from pipeline.ops import replays

    rt = runtime()
    try:
        with rt.engine.connect() as connection:
            current = replays.progress(connection, plan_id, items=items)
    except PlanNotFound:
        raise click.ClickException(f"no replay plan has id {plan_id!r}") from None
    if as_json:
        emit(current)
    else:
        render.plan(current)


@replay.command("cancel")
@click.argument("plan_id")
@as_json
def replay_cancel(plan_id: str, as_json: bool) -> None:
    """Stop a plan: items not yet run are not run."""
    from pipeline.errors import PlanNotFound
    from pipeline.ops import replays

    try:
        current = replays.cancel(runtime(), plan_id, actor=actor())
    except PlanNotFound:
        raise click.ClickException(f"no replay plan has id {plan_id!r}") from None
    if as_json:
        emit(current)
    else:
        render.plan(current)


# ---- destinations and audit ----------------------------------------------------------------


@click.group()
def destinations() -> None:
    """Pause, resume and inspect destinations."""


@destinations.command("ls")
@as_json
def destinations_ls(as_json: bool) -> None:
    """Each destination: paused, circuit, held and open work, its rate budget."""
    from pipeline.ops.destinations import destinations as listed

    found = listed(runtime())
    if as_json:
        emit({"data": found})
    else:
        render.destinations_table(found)


@destinations.command("status", hidden=True)
@as_json
def destinations_status(as_json: bool) -> None:
    """The same as `destinations ls`."""
    destinations_ls.callback(as_json)  # type: ignore[misc]


def _set_paused(name: str, paused: bool, reason: str | None, as_json: bool) -> None:
    from pipeline.ops.destinations import set_paused

    rt = runtime()
    if name not in rt.config.destinations:
        raise click.ClickException(f"no destination named {name!r} in the config")
    released = set_paused(rt, name, paused=paused, actor=actor(), reason=reason)
    if as_json:
        emit({"name": name, "paused": paused, "released": released})
    elif paused:
        click.echo(f"{name}: paused; its deliveries are held until you resume it")
    else:
        click.echo(f"{name}: resumed; {released} held deliveries released")


@destinations.command("pause")
@click.argument("name")
@click.option("--reason", help="Kept in the audit log.")
@as_json
def destinations_pause(name: str, reason: str | None, as_json: bool) -> None:
    """Hold every delivery to NAME until it is resumed."""
    _set_paused(name, True, reason, as_json)


@destinations.command("resume")
@click.argument("name")
@click.option("--reason", help="Kept in the audit log.")
@as_json
def destinations_resume(name: str, reason: str | None, as_json: bool) -> None:
    """Resume NAME and release what it held."""
    _set_paused(name, False, reason, as_json)


@click.command()
@click.option("--action", help="replay.plan, replay.execute, destination.pause…")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@as_json
def audit(action: str | None, limit: int, as_json: bool) -> None:
    """Who changed what, newest first."""
    from pipeline.ops.audit import entries

    rt = runtime()
    with rt.engine.connect() as connection:
        rows = entries(connection, limit=limit, action=action)
    if as_json:
        emit({"data": rows})
    else:
        render.audit_table(rows)


def register(main: click.Group) -> None:
    for command in (events, trace, dlq, replay, destinations, audit):
        main.add_command(command)
