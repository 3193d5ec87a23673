"""The database: engine set-up, one transaction at a time, and migrations.

SQLite runs with WAL, a busy timeout, foreign keys on and ``synchronous=FULL`` (a commit is synced
to disk before it returns, as PostgreSQL's is), and every transaction starts with
``BEGIN IMMEDIATE`` so that writers queue instead of failing half-way (SQLite has no row locks).
Writers queue on an OS file lock beside the database file (``fcntl.flock``), taken just before
``BEGIN IMMEDIATE`` and released right after ``COMMIT`` or ``ROLLBACK``: a waiting process wakes as
soon as the lock is free, where SQLite's busy handler would sleep in steps of up to 100 ms.
WAL checkpoints (copying committed pages back into the database file, with an fsync) run on a
background thread of each process (``Checkpointer``), not inside a request's COMMIT: a connection
checkpoints by itself only when the WAL has grown past ``BACKSTOP_PAGES``, as a backstop.
PostgreSQL runs through psycopg 3; the webhook locks a family's row by writing to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


# Execution option of the reads before a ``Database.unit``: on SQLite they issue no BEGIN at all.
READ_ONLY = "bravesteps_read_only"

_held = threading.local()  # .held: this thread holds the writer lock (see _WriterLockConnection)
_unpinged = threading.local()  # .on: this thread's checkout skips the pre-ping (Database.unit)


class _WriterLockConnection(sqlite3.Connection):
    """A SQLite connection that holds an exclusive ``flock`` on a lock file while in a transaction.

    Each connection opens the lock file itself, so connections in threads of one process queue on
    it as well as connections in other processes. A thread that already holds the lock through
    another connection does not wait for it again (SQLite's own locking still applies).
    """

    writer_lock_fd: int | None = None
    holding = False

    def acquire_writer_lock(self) -> None:
        if self.writer_lock_fd is None or self.holding or getattr(_held, "held", False):
            return
        fcntl.flock(self.writer_lock_fd, fcntl.LOCK_EX)
        self.holding = True
        _held.held = True

    def release_writer_lock(self) -> None:
        if self.holding and self.writer_lock_fd is not None:
            self.holding = False
            _held.held = False
            fcntl.flock(self.writer_lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_writer_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_writer_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_writer_lock()
            if self.writer_lock_fd is not None:
                os.close(self.writer_lock_fd)
                self.writer_lock_fd = None


# A connection checkpoints by itself (inside the COMMIT that crosses it) only past this many WAL
# pages (80 MB at 4 KB a page): normally the checkpointer thread has long since done it.
BACKSTOP_PAGES = 20_000


class Checkpointer:
    """One thread per process that checkpoints the WAL of each SQLite database file in use.

    Every ``interval`` seconds, a database whose WAL file has grown past ``min_bytes`` gets a
    PASSIVE checkpoint on a connection of the thread's own: it copies what no reader still needs
    and never waits for, or blocks, a writer. So a request's COMMIT only appends to the WAL, and
    a page written many times between two checkpoints is copied once.
    """

    def __init__(self, interval: float = 0.5, min_bytes: int = 4 << 20) -> None:
        self.interval = interval
        self.min_bytes = min_bytes
        self._paths: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def watch(self, owner: object, path: str) -> None:
        """Checkpoint ``path`` while ``owner`` lives (or until ``forget``)."""
        with self._guard:
            self._paths[owner] = path
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                # First use, or a forked child (threads do not survive a fork).
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="sqlite-checkpointer", daemon=True
                )
                self._thread.start()

    def forget(self, owner: object) -> None:
        with self._guard:
            self._paths.pop(owner, None)

    def run_once(self) -> int:
        """Checkpoint every watched database whose WAL is big enough; the pages copied."""
        with self._guard:
            paths = set(self._paths.values())
        copied = 0
        for path in paths:
            try:
                if os.path.getsize(path + "-wal") < self.min_bytes:
                    continue
            except OSError:
                continue  # no WAL (yet, or any more)
            copied += checkpoint(path)
        return copied

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            # A busy or vanished database: the next round, or the backstop, will do it.
            with contextlib.suppress(sqlite3.Error):
                self.run_once()


def checkpoint(path: str) -> int:
    """One PASSIVE checkpoint of the database file at ``path``; the WAL pages copied."""
    connection = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    try:
        row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        connection.close()
    return int(row[2]) if row and row[2] > 0 else 0


CHECKPOINTER = Checkpointer()


def _lock_path(url: str) -> str | None:
    """The writers' lock file beside a SQLite database file (None for an in-memory database)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database + "-writer.lock"


def make_engine(url: str) -> Engine:
    """Create an engine with the settings each database needs for safe concurrent use."""
    if url.startswith("sqlite"):
        lock_path = _lock_path(url)
        engine = create_engine(
            url,
            connect_args={
                "timeout": 30,
                "check_same_thread": False,
                "factory": _WriterLockConnection,
            },
            # A small pool: each connection sets its PRAGMAs once, not once per request.
            pool_size=5,
            max_overflow=10,
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            if lock_path is not None:
                dbapi_connection.writer_lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            # FULL: a COMMIT is on disk (the WAL synced) before it returns. A webhook answered
            # 200 is never retried by Twilio, and a reply marked sent is never sent again, so
            # neither may be undone by a power cut; NORMAL would keep the database consistent
            # but could lose the last commits.
            cursor.execute("PRAGMA synchronous=FULL")
            if lock_path is not None:  # a file: the checkpointer thread keeps the WAL short
                cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            if connection.get_execution_options().get(READ_ONLY):
                return  # each statement reads on its own (autocommit): no BEGIN, no lock
            dbapi_connection = connection.connection.dbapi_connection
            if isinstance(dbapi_connection, _WriterLockConnection):
                dbapi_connection.acquire_writer_lock()
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                if isinstance(dbapi_connection, _WriterLockConnection):
                    dbapi_connection.release_writer_lock()
                raise

        return engine
    engine = create_engine(url, pool_size=5, max_overflow=10, hide_parameters=True)

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        """SQLAlchemy's pre-ping (a round trip to check a pooled connection is alive, and a
        new connection if not), except for a ``Database.unit(ping=False)``."""
        if getattr(_unpinged, "on", False):
            return
        dialect = engine.dialect
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            raise InvalidatePoolError("pre-ping: the connection was closed")

    return engine


class Unit:
    """A connection in a transaction, and an ORM session joined to it, made on first use."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The ORM session on this transaction (it never commits or rolls back by itself)."""
        if self._session is None:
            self._session = Session(bind=self.connection, expire_on_commit=False)
        return self._session

    def flush(self) -> None:
        if self._session is not None:
            self._session.flush()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class Database:
    """The engine and the session factory of one process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if _lock_path(url) is not None:
            database = make_url(url).database
            assert database is not None
            CHECKPOINTER.watch(self, database)

    @property
    def is_sqlite(self) -> bool:
        """SQLite claims work with a guarded UPDATE instead of SKIP LOCKED."""
        return self.engine.dialect.name == "sqlite"

    def lost_connection(self, error: BaseException) -> bool:
        """True if ``error`` says the database connection was lost (the server went away or
        closed it), whether raised through SQLAlchemy or by the driver itself (``fastsql``)."""
        if isinstance(error, DBAPIError):
            return bool(error.connection_invalidated)
        dialect = self.engine.dialect
        return isinstance(error, dialect.loaded_dbapi.Error) and bool(
            dialect.is_disconnect(error, None, None)
        )

    @contextmanager
    def unit(
        self, before: Callable[[Connection], None] | None = None, *, ping: bool = True
    ) -> Iterator[Unit]:
        """One transaction on one connection, with an ORM session on it only when one is asked for.

        Commits if the block finishes (after flushing the session, if any), rolls back on any
        error. For hot paths written in Core that sometimes need the ORM.

        ``ping=False`` (PostgreSQL) skips the round trip that checks a pooled connection is still
        alive: for a caller that runs the whole unit again when it fails with a lost connection
        (``lost_connection``), which is safe only when running it twice changes nothing more
        than running it once (the webhook: a MessageSid is stored once).

        ``before`` reads on the same connection before the transaction begins. On SQLite it runs
        outside any write transaction, taking neither the writers' lock nor ``BEGIN IMMEDIATE``:
        each statement reads the last committed state on its own (WAL readers wait for no
        writer), so what it read may be stale by the time the transaction starts and must be
        checked again in it. It must not write (that would run unlocked). On PostgreSQL it runs in
        a transaction of its own, rolled back before the unit's begins.
        """
        _unpinged.on = not ping
        try:
            connection = self.engine.connect()
        finally:
            _unpinged.on = False
        with connection:
            if before is not None:
                connection.execution_options(**{READ_ONLY: True})
                try:
                    before(connection)
                finally:
                    connection.rollback()  # ends the reads (on SQLite there is nothing to end)
                    connection.execution_options(**{READ_ONLY: False})
            with connection.begin():
                unit = Unit(connection)
                try:
                    yield unit
                    unit.flush()
                finally:
                    unit.close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: commits if the block finishes, rolls back on any error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        """Close pooled connections (tests, forks) and stop checkpointing this database."""
        CHECKPOINTER.forget(self)
        self.engine.dispose()


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic configuration pointing at our migrations and ``url``."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Create or migrate the database to the newest schema."""
    command.upgrade(alembic_config(url), "head")
