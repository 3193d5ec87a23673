"""partial indexes: rows that an index never finds stay out of it

The unique keys of messages (``twilio_sid``, ``dedupe_key``) and of due work (``dedupe_key``)
index only the rows that have one: a reply has no SID until it is sent, most rows have no dedupe
key. The outbox index holds outgoing messages only, and the due-work index pending rows only.
Every inbound message used to add an entry to four of these; it now adds one (its SID).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("uq_messages_twilio_sid", type_="unique")
        batch.drop_constraint("uq_messages_dedupe_key", type_="unique")
        batch.drop_index("ix_messages_outbox")
    op.create_index(
        "uq_messages_twilio_sid",
        "messages",
        ["twilio_sid"],
        unique=True,
        **_where("twilio_sid IS NOT NULL"),
    )
    op.create_index(
        "uq_messages_dedupe_key",
        "messages",
        ["dedupe_key"],
        unique=True,
        **_where("dedupe_key IS NOT NULL"),
    )
    op.create_index(
        "ix_messages_outbox", "messages", ["status", "due_at"], **_where("direction = 'out'")
    )
    with op.batch_alter_table("due_work") as batch:
        batch.drop_constraint("uq_due_work_dedupe_key", type_="unique")
        batch.drop_index("ix_due_work_pending")
    op.create_index(
        "uq_due_work_dedupe_key",
        "due_work",
        ["dedupe_key"],
        unique=True,
        **_where("dedupe_key IS NOT NULL"),
    )
    op.create_index("ix_due_work_pending", "due_work", ["due_at"], **_where("done_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_due_work_pending", table_name="due_work")
    op.drop_index("uq_due_work_dedupe_key", table_name="due_work")
    with op.batch_alter_table("due_work") as batch:
        batch.create_unique_constraint("uq_due_work_dedupe_key", ["dedupe_key"])
        batch.create_index("ix_due_work_pending", ["done_at", "due_at"])
    op.drop_index("ix_messages_outbox", table_name="messages")
    op.drop_index("uq_messages_dedupe_key", table_name="messages")
    op.drop_index("uq_messages_twilio_sid", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.create_unique_constraint("uq_messages_twilio_sid", ["twilio_sid"])
        batch.create_unique_constraint("uq_messages_dedupe_key", ["dedupe_key"])
        batch.create_index("ix_messages_outbox", ["status", "due_at"])
