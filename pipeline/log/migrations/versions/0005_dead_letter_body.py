"""dead letters keep raw bytes: the second body of an id conflict, replayable as a new event

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # bytea, not jsonb: any body is storable byte for byte (jsonb refuses \u0000, a form body is
    # no JSON), and nullable, so adding it rewrites no existing row
    op.add_column("dead_letters", sa.Column("body", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("dead_letters", "body")
