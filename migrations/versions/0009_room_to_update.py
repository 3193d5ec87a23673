"""PostgreSQL: room on each page of families and conversations for their rows' next versions

Every message a parent sends updates their family's row and conversation's row. With free space
on the row's own page, PostgreSQL makes the new version there ("HOT") and leaves the indexes
alone; a full page sends it elsewhere and adds an entry to every index of the table (three on
families). Pages are filled to 70% from now on. SQLite updates rows in place: nothing to do.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("families", "conversations")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
