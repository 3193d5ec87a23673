"""Claiming rows of work so that no two processes ever do the same thing.

One statement both picks and marks the rows: ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
LOCKED) RETURNING id`` on PostgreSQL, and the same guarded ``UPDATE ... RETURNING`` on SQLite, whose
writers are serialised (SQLAlchemy silently drops SKIP LOCKED there). A claim carries a token and a
lease: the worker that finishes must still hold the token, and a claim whose process died is free
again once its lease runs out.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session


def new_token() -> str:
    """A claim token, unique per claiming call."""
    return secrets.token_hex(16)


def claim_ids(
    session: Session,
    model: Any,
    ready: list[ColumnElement[bool]],
    *,
    order_by: list[Any],
    limit: int,
    token: str,
    values: dict[str, Any],
) -> list[int]:
    """Atomically mark up to ``limit`` ready rows with ``token`` and ``values``; return ids."""
    pick = select(model.id).where(*ready).order_by(*order_by).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    statement = (
        update(model)
        .where(model.id.in_(pick.scalar_subquery()), *ready)
        .values(claim_token=token, **values)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.execute(statement).scalars().all())
