"""dispatches: how often the sweeper re-published an event or a delivery, for its backoff

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("events", "deliveries"):
        op.add_column(
            table, sa.Column("dispatches", sa.SmallInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    for table in ("events", "deliveries"):
        op.drop_column(table, "dispatches")
