"""The database layer: SQLite's WAL checkpoints off the request path, and the quick datetime
conversion ``service.fastsql`` uses matching SQLAlchemy's."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

from service.db import BACKSTOP_PAGES, CHECKPOINTER, Checkpointer, Database
from service.models import UTCDateTime


def _fill(db: Database, transactions: int) -> None:
    """Commit ``transactions`` transactions of about 64 KB each."""
    for _ in range(transactions):
        with db.unit() as unit:
            unit.connection.execute(text("INSERT INTO scratch (data) VALUES (randomblob(65536))"))


def _wal_pages(db: Database) -> int:
    """Pages in the WAL file, read from its size (a header, then a header and a page a frame)."""
    path = (db.engine.url.database or "") + "-wal"
    size = os.path.getsize(path) if os.path.exists(path) else 0
    return max(0, size - 32) // (4096 + 24)


def _copied(db: Database) -> tuple[int, int]:
    """(pages in the WAL, pages of it copied into the database) after one PASSIVE checkpoint."""
    connection = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
    row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    connection.close()
    return int(row[1]), int(row[2])


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    with database.unit() as unit:
        unit.connection.execute(text("CREATE TABLE scratch (id INTEGER PRIMARY KEY, data BLOB)"))
    yield database
    database.dispose()


def test_commits_leave_the_wal_to_the_checkpointer(db: Database) -> None:
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == BACKSTOP_PAGES
    CHECKPOINTER.forget(db)  # this test drives the checkpoints itself
    _fill(db, 100)  # about 1,700 pages: past SQLite's own 1,000-page checkpoint
    pages = _wal_pages(db)
    assert pages > 1000  # the WAL was never started again: no COMMIT checkpointed it
    own = Checkpointer(min_bytes=0)
    own.watch(db, db.engine.url.database or "")
    assert own.run_once() >= pages - 1
    assert _copied(db) == (pages, pages)  # all copied: the next writer starts the WAL again
    _fill(db, 1)
    assert _wal_pages(db) == pages  # the file stays; its frames are overwritten from the start
    assert _copied(db)[0] < 100


def test_a_commit_is_synced_to_disk_before_it_returns(db: Database) -> None:
    """synchronous=FULL: in WAL mode NORMAL may lose the last commits to a power cut, and a
    webhook answered 200 (never retried) or a reply marked sent (never sent again) must not be."""
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_small_wal_is_left_alone(db: Database) -> None:
    own = Checkpointer(min_bytes=4 << 20)
    own.watch(db, db.engine.url.database or "")
    _fill(db, 2)
    assert own.run_once() == 0


def test_each_process_checkpoints_on_a_thread_of_its_own(db: Database) -> None:
    assert any(t.name == "sqlite-checkpointer" and t.is_alive() for t in threading.enumerate())
    assert CHECKPOINTER._pid == os.getpid()
    assert db in CHECKPOINTER._paths
    db.dispose()
    assert db not in CHECKPOINTER._paths


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 28, 21, 4, 26, 123456, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # no microseconds
        datetime(2026, 3, 29, 2, 30, 5, 7, tzinfo=ZoneInfo("Europe/London")),
        datetime(2026, 6, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
        None,
    ],
)
def test_the_quick_sqlite_datetime_matches_sqlalchemys(moment: datetime | None) -> None:
    """``fastsql`` stores a datetime as SQLAlchemy's own processors would, and reads it back."""
    dialect = sqlite.dialect()
    kind = UTCDateTime()
    slow = kind.dialect_impl(dialect).bind_processor(dialect)
    quick = kind.driver_bind(dialect)
    assert slow is not None and quick is not None
    assert quick(moment) == slow(moment)
    read = kind.dialect_impl(dialect).result_processor(dialect, None)
    assert read is not None and read(quick(moment)) == moment
    assert kind.driver_bind(postgresql.dialect()) is None  # psycopg takes the datetime itself


def test_the_quick_sqlite_datetime_refuses_a_naive_one() -> None:
    quick = UTCDateTime().driver_bind(sqlite.dialect())
    assert quick is not None
    with pytest.raises(ValueError, match="naive"):
        quick(datetime(2026, 1, 1, 12, 0))


def test_the_migrations_make_the_models_schema(database_url: str) -> None:
    """``bravesteps db upgrade`` builds exactly the tables, columns, keys and indexes (partial
    ones with their conditions) that the models declare."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine, inspect

    from service.models import Base

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            indexes = {
                index["name"]: index
                for table in ("messages", "due_work")
                for index in inspect(connection).get_indexes(table)
            }
    finally:
        engine.dispose()
    assert differences == []

    def condition(name: str) -> str:
        options = indexes[name].get("dialect_options", {})
        where = options.get("sqlite_where", options.get("postgresql_where"))
        return str(where).replace("(", "").replace(")", "").upper()

    assert indexes["uq_messages_twilio_sid"]["unique"]
    assert condition("uq_messages_twilio_sid") == "TWILIO_SID IS NOT NULL"
    assert condition("uq_due_work_dedupe_key") == "DEDUPE_KEY IS NOT NULL"
    assert condition("ix_messages_outbox") in ("DIRECTION = 'OUT'", "DIRECTION::TEXT = 'OUT'::TEXT")
    assert indexes["ix_due_work_pending"]["column_names"] == ["due_at"]
    assert condition("ix_due_work_pending") == "DONE_AT IS NULL"
