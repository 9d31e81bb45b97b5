"""delivery subjects: the purchase or subscription an action is about, so a revoke can wait for
its grant and cancel one not yet sent

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("subject", sa.Text(), nullable=True))
    op.create_index(
        "deliveries_destination_subject",
        "deliveries",
        ["destination", "subject"],
        postgresql_where=sa.text("subject IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("deliveries_destination_subject", table_name="deliveries")
    op.drop_column("deliveries", "subject")
