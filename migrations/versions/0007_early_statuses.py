"""early_statuses: status callbacks that arrive before their message's SID is stored

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "early_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_early_statuses"),
    )
    op.create_index("ix_early_statuses_sid", "early_statuses", ["sid"])


def downgrade() -> None:
    op.drop_index("ix_early_statuses_sid", table_name="early_statuses")
    op.drop_table("early_statuses")
