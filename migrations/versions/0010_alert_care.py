"""alert care: staff command misses, overdue alerts, what raised an alert, outbox priority

- ``staff_command_misses``: each SMS command from a member of staff that named no alert of
  theirs; five in 15 minutes refuse that number's commands for a while.
- ``alerts.overdue_at``: an urgent alert whose rota ran out with nobody acknowledging it.
- ``alerts.rule`` and ``alerts.score``: what raised the alert (a screening rule's id, or
  ``model:<version>`` and its score), for the clinical safety officer's audit.
- ``messages.priority``: 1 for risk replies and texts to staff about urgent alerts, which the
  sender claims first; the outbox index leads with it after the status, in the claim's order.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OUTBOX_WHERE = "direction = 'out'"


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.create_table(
        "staff_command_misses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name="fk_staff_command_misses_staff_id_staff"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_staff_command_misses"),
    )
    op.create_index(
        "ix_staff_command_misses_staff_id_created_at",
        "staff_command_misses",
        ["staff_id", "created_at"],
    )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rule", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("score", sa.Float(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    op.drop_index("ix_messages_outbox", table_name="messages")
    op.create_index(
        "ix_messages_outbox",
        "messages",
        ["status", sa.text("priority DESC"), "due_at"],
        **_where(OUTBOX_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_outbox", table_name="messages")
    op.create_index("ix_messages_outbox", "messages", ["status", "due_at"], **_where(OUTBOX_WHERE))
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("priority")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("score")
        batch.drop_column("rule")
        batch.drop_column("overdue_at")
    op.drop_index("ix_staff_command_misses_staff_id_created_at", table_name="staff_command_misses")
    op.drop_table("staff_command_misses")
