"""safety: alert deadlines, escalation levels and events, handoff, check-in tracking

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("families") as batch:
        batch.add_column(
            sa.Column("missed_check_ins", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("nudged_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("handoff_staff_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_conversations_handoff_staff_id_staff", "staff", ["handoff_staff_id"], ["id"]
        )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("due_by", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("level", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_alert_events_alert_id_alerts")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_alert_events_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    op.create_index(op.f("ix_alert_events_alert_id"), "alert_events", ["alert_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_events_alert_id"), table_name="alert_events")
    op.drop_table("alert_events")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("level")
        batch.drop_column("due_by")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint("fk_conversations_handoff_staff_id_staff", type_="foreignkey")
        batch.drop_column("handoff_staff_id")
    with op.batch_alter_table("families") as batch:
        batch.drop_column("nudged_at")
        batch.drop_column("missed_check_ins")
