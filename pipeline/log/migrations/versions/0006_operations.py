"""operations: searchable handles on events, the audit log and replay plans

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # nullable columns without defaults: adding them rewrites no existing row
    op.add_column("events", sa.Column("origin", sa.Text(), nullable=True))
    op.add_column("events", sa.Column("trace_id", sa.Text(), nullable=True))
    op.add_column("events", sa.Column("handles", postgresql.JSONB(), nullable=True))
    # jsonb_path_ops keeps a hash per path and value, never the value: `handles @> '["…"]'`
    # and `canonical @> '{…}'` are answered by the index, and no clear value is in it
    op.create_index(
        "events_handles_idx",
        "events",
        ["handles"],
        postgresql_using="gin",
        postgresql_ops={"handles": "jsonb_path_ops"},
    )
    op.create_index(
        "events_canonical_idx",
        "events",
        ["canonical"],
        postgresql_using="gin",
        postgresql_ops={"canonical": "jsonb_path_ops"},
    )
    op.create_index("events_external_id_idx", "events", ["external_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("plan_id", sa.Text(), nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("event_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("counts", postgresql.JSONB(), nullable=True),
    )
    op.create_index("audit_log_at_idx", "audit_log", ["at"])
    op.create_index("audit_log_event_ids_idx", "audit_log", ["event_ids"], postgresql_using="gin")
    op.create_table(
        "replay_plans",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("filters", postgresql.JSONB(), nullable=False),
        sa.Column("force", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("summary", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.Text(), server_default="planned", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("executed_by", sa.Text(), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "replay_items",
        sa.Column("plan_id", sa.Text(), sa.ForeignKey("replay_plans.id"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("events.id"), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), sa.ForeignKey("deliveries.id"), nullable=True),
        sa.Column(
            "dead_letter_id", sa.BigInteger(), sa.ForeignKey("dead_letters.id"), nullable=True
        ),
        sa.Column("destination", sa.Text(), nullable=True),
        sa.Column("failure_class", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("replay_items_event_idx", "replay_items", ["event_id"])


def downgrade() -> None:
    op.drop_table("replay_items")
    op.drop_table("replay_plans")
    op.drop_table("audit_log")
    op.drop_index("events_external_id_idx", table_name="events")
    op.drop_index("events_canonical_idx", table_name="events")
    op.drop_index("events_handles_idx", table_name="events")
    for column in ("handles", "trace_id", "origin"):
        op.drop_column("events", column)
