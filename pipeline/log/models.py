"""The event log and everything hung off it.

`events` is the canonical, append-only log: the raw request is never rewritten; only its
processing status moves forward. Every step taken on an event is an `event_steps` row, every
(event, action) a `deliveries` row and every try an `attempts` row, so an event's whole trace
can be read back. Failures that need a human land in `dead_letters` with what is needed to
replay them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, datetime: DateTime(timezone=True)}


class EventStatus:
    RECEIVED = "received"  # committed; the verify task may not have been published yet
    VERIFIED = "verified"  # signature/contract/finality checked; fetch next
    PROCESSED = "processed"  # canonical event built and its deliveries planned
    WAITING = "waiting"  # payment not final; a later event about the same object decides
    IGNORED = "ignored"  # a type no flow needs, or an older state than one already seen
    QUARANTINED = "quarantined"  # contract broken or id conflict; kept and replayable
    REJECTED = "rejected"  # the provider said the signature is not theirs (PayPal postback)
    FAILED = "failed"  # verify or fetch gave up; a dead letter holds the reason

    OPEN = (RECEIVED, VERIFIED)
    FINAL = (PROCESSED, WAITING, IGNORED, QUARANTINED, REJECTED, FAILED)


class DeliveryStatus:
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    RETRYING = "retrying"
    HELD = "held"  # destination paused or its circuit open: kept, not attempted
    DELIVERED = "delivered"
    DEAD = "dead"
    # a grant (enroll) not yet sent when a revoke (unenroll) of the same purchase was planned
    CANCELLED = "cancelled"

    OPEN = (PENDING, IN_FLIGHT, RETRYING, HELD)
    CLAIMABLE = (PENDING, RETRYING, HELD)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(Text)
    provider_type: Mapped[str] = mapped_column(Text)
    lane: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=EventStatus.RECEIVED)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column()
    body_sha256: Mapped[bytes] = mapped_column(LargeBinary)
    secret_index: Mapped[int | None] = mapped_column(SmallInteger)
    redeliveries: Mapped[int] = mapped_column(Integer, server_default="0")
    conflicts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_redelivery_at: Mapped[datetime | None] = mapped_column()
    canonical_type: Mapped[str | None] = mapped_column(Text)
    canonical: Mapped[dict[str, Any] | None] = mapped_column()
    # the provider's object as fetched: kept for the trace and dead letters, never queried into,
    # so stored as plain JSON text (no jsonb parse on the hot path)
    fetched: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    object_key: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    dispatched_at: Mapped[datetime | None] = mapped_column()
    # re-publishes by the sweeper since the item last moved: its backoff doubles with each
    dispatches: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    replays: Mapped[int] = mapped_column(Integer, server_default="0")
    # "webhook" (NULL in rows older than the column), "backfill" or "replay"
    origin: Mapped[str | None] = mapped_column(Text)
    # the receiver's trace id: every log line about this event, in every process, carries it
    trace_id: Mapped[str | None] = mapped_column(Text)
    # what an operator searches by: "email:<keyed hash>", "payment:pi_…", "customer:cus_…"
    # (pipeline/ops/handles.py); never a clear e-mail address
    handles: Mapped[list[str] | None] = mapped_column(JSONB)

    __table_args__ = (
        UniqueConstraint("source", "external_id", name="events_source_external_id_key"),
        Index(
            "events_open_idx",
            "status",
            "updated_at",
            postgresql_where=text("status IN ('received', 'verified')"),
        ),
        # the log is appended in time order: a BRIN index serves time ranges for almost no
        # cost per insert, and object keys are set after receipt, so the insert adds no entry
        Index("events_received_at_idx", "received_at", postgresql_using="brin"),
        Index(
            "events_object_key_idx",
            "object_key",
            postgresql_where=text("object_key IS NOT NULL"),
        ),
        Index(
            "events_handles_idx",
            "handles",
            postgresql_using="gin",
            postgresql_ops={"handles": "jsonb_path_ops"},
        ),
        Index(
            "events_canonical_idx",
            "canonical",
            postgresql_using="gin",
            postgresql_ops={"canonical": "jsonb_path_ops"},
        ),
        Index("events_external_id_idx", "external_id"),
    )


class EventStep(Base):
    """One row per step taken on an event: the event's trace."""

    __tablename__ = "event_steps"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    step: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    duration_ms: Mapped[float | None] = mapped_column()
    detail: Mapped[dict[str, Any] | None] = mapped_column()


class Delivery(Base):
    """One row per (canonical subject, action): the ledger that makes effects happen once."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    action: Mapped[str] = mapped_column(Text)
    destination: Mapped[str] = mapped_column(Text)
    lane: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text, server_default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # the attempt window is measured from here; a replay starts a new window
    window_started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    lease_until: Mapped[datetime | None] = mapped_column()
    # the Celery task id holding the lease: its own redelivery (worker killed) may take it back
    claimed_by: Mapped[str | None] = mapped_column(Text)
    dispatched_at: Mapped[datetime | None] = mapped_column()
    # re-publishes by the sweeper since the item last moved: its backoff doubles with each
    dispatches: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    delivered_at: Mapped[datetime | None] = mapped_column()
    result: Mapped[dict[str, Any] | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    # the purchase or subscription the action is about ("stripe:purchase:cs_123"): a revoke of it
    # waits for its grant, and cancels one not yet sent
    subject: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "deliveries_destination_subject",
            "destination",
            "subject",
            postgresql_where=text("subject IS NOT NULL"),
        ),
        Index(
            "deliveries_open_idx",
            "destination",
            "status",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'in_flight', 'retrying', 'held')"),
        ),
    )


class Attempt(Base):
    """One row per try of a delivery, kept forever: what was sent, what came back, how long."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    duration_ms: Mapped[float] = mapped_column()
    outcome: Mapped[str] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_class: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    request: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(Text)


class DeadLetter(Base):
    """A failure a human must see: the payload, the fetched object, the trace, and how to replay."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    step: Mapped[str] = mapped_column(Text)
    failure_class: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    trace: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column()
    fetched: Mapped[dict[str, Any] | None] = mapped_column()
    # raw bytes a dead letter must keep beyond its event's own body: the second body of an id
    # conflict (bounded by the source's max_body_bytes), replayable as a new event
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(Text, server_default="open")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    replayed_at: Mapped[datetime | None] = mapped_column()
    replay_count: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (
        Index("dead_letters_open_idx", "status", postgresql_where=text("status = 'open'")),
    )


class Contact(Base):
    """One canonical person, matched on the hash of the normalized e-mail address."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email_hash: Mapped[str] = mapped_column(Text, unique=True)
    email: Mapped[str] = mapped_column(Text)
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ContactIdentity(Base):
    """The identity graph: a Stripe customer, a PayPal payer, an invitee, all linked to one contact."""

    __tablename__ = "contact_identities"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (UniqueConstraint("kind", "value", name="contact_identities_kind_value_key"),)


class ObjectVersion(Base):
    """The newest state seen of each provider object: an older webhook never overwrites it."""

    __tablename__ = "object_versions"

    object_key: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SchemaDrift(Base):
    """Fields a provider added or dropped, per source and event type: drift made visible."""

    __tablename__ = "schema_drift"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    provider_type: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    field: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen: Mapped[datetime] = mapped_column(server_default=func.now())
    count: Mapped[int] = mapped_column(Integer, server_default="1")
    last_event_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("source", "provider_type", "kind", "field", name="schema_drift_key"),
    )


class Alert(Base):
    """A business or integrity alert raised by the pipeline (drift, id conflicts, dead letters)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer, server_default="1")
    first_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_at: Mapped[datetime] = mapped_column(server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index(
            "alerts_open_key",
            "kind",
            "subject",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )


class CircuitTransition(Base):
    """A destination's circuit breaker changed state: opened, half-open, re-opened, closed."""

    __tablename__ = "circuit_transitions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    destination: Mapped[str] = mapped_column(Text)
    to_state: Mapped[str] = mapped_column(Text)
    calls: Mapped[int] = mapped_column(Integer, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    cooldown_seconds: Mapped[float] = mapped_column(server_default="0")
    at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("circuit_transitions_destination_at", "destination", "at"),)


class AuditEntry(Base):
    """Who changed what through the operator's tools, and why: one row per changing request."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    plan_id: Mapped[str | None] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(Text)
    event_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    counts: Mapped[dict[str, Any] | None] = mapped_column()

    __table_args__ = (Index("audit_log_event_ids_idx", "event_ids", postgresql_using="gin"),)


class ReplayPlan(Base):
    """A bulk replay, planned first: the matched set is frozen in `replay_items` when planned."""

    __tablename__ = "replay_plans"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_by: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(Text)
    filters: Mapped[dict[str, Any]] = mapped_column()
    force: Mapped[bool] = mapped_column(server_default=false())
    count: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column()
    # planned -> running -> done | cancelled
    status: Mapped[str] = mapped_column(Text, server_default="planned")
    reason: Mapped[str | None] = mapped_column(Text)
    executed_by: Mapped[str | None] = mapped_column(Text)
    executed_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class ReplayItem(Base):
    """One event (and, for a delivery, its delivery) of a plan, with its result once run."""

    __tablename__ = "replay_items"

    plan_id: Mapped[str] = mapped_column(ForeignKey("replay_plans.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    dead_letter_id: Mapped[int | None] = mapped_column(ForeignKey("dead_letters.id"))
    destination: Mapped[str | None] = mapped_column(Text)
    failure_class: Mapped[str | None] = mapped_column(Text)
    # pending -> done | skipped | failed | cancelled
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    outcome: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column()
