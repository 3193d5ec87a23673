"""SQLAlchemy Core statements compiled once and run on the database driver's own cursor.

The webhook's hot path runs a handful of short statements per message, and SQLAlchemy's work for
each execution (parameter processing through the execution context, result metadata, events)
costs more than the statements themselves. A ``Prepared`` statement is compiled once per dialect
with named parameters, converts values with the column types' own bind and result processors (so
a value is stored and read back exactly as SQLAlchemy would store and read it), and runs on the
DBAPI connection beneath a SQLAlchemy ``Connection``: inside the same transaction, with the same
locks, before or after statements that went through SQLAlchemy.

Only what the hot path needs: no expanding ``IN`` parameters, no Python-side defaults other than
constants, no ``onupdate``. Building a statement that needs more fails at once.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


def _for_driver(dialect: Dialect) -> Dialect:
    """The engine's dialect with the parameters the driver is given here.

    sqlite3: named (``:name``). psycopg: PostgreSQL's own (``$1``), for a raw cursor, which
    sends the statement as it is: psycopg's usual cursor rewrites ``%(name)s`` into ``$1`` on
    every execution of a statement longer than 4 KB or with more than 50 parameters (it caches
    only shorter ones), and a message's writes are one such statement.
    """
    style = "numeric_dollar" if dialect.name == "postgresql" else "named"
    if dialect.paramstyle == style:
        return dialect
    made: Dialect = type(dialect)(paramstyle=style)  # type: ignore[call-arg]
    return made


def _default_cursor(dbapi_connection: Any) -> Any:
    return dbapi_connection.cursor()


@cache
def _cursor_factory(dialect_name: str) -> Callable[[Any], Any]:
    """How to open a cursor for ``Prepared`` statements on a driver connection."""
    if dialect_name == "postgresql":
        from psycopg import RawCursor

        return RawCursor
    return _default_cursor


class Prepared:
    """One statement, compiled for one dialect, run on the driver's cursor."""

    __slots__ = (
        "columns",
        "cursor",
        "defaults",
        "dialect",
        "order",
        "processors",
        "result_processors",
        "row",
        "sql",
    )

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=_for_driver(dialect))
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        # Positional parameters: each name once, in the order of its number.
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.cursor = _cursor_factory(dialect.name)
        processors: list[tuple[str, Processor]] = []
        for bind, name in compiled.bind_names.items():
            if bind.expanding:
                raise ValueError(f"expanding parameter {name!r} is not supported here")
            if compiled.escaped_bind_names.get(name, name) != name:
                raise ValueError(f"parameter {name!r} would be renamed; choose a plain name")
            # A type may offer a quicker processor that gives the same values (``driver_bind``).
            quick = getattr(bind.type, "driver_bind", None)
            process = quick(dialect) if quick is not None else None
            if process is None:
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((name, process))
        self.processors = tuple(processors)
        # Values fixed in the statement (literals such as ``outcome='cancelled'``).
        self.defaults = dict(compiled.construct_params(_check=False))
        self.dialect = dialect
        self.columns = list(getattr(statement, "exported_columns", ()))
        self.row: Any = namedtuple("Row", [column.key for column in self.columns])  # type: ignore[misc]
        # Made from the first result's description: some processors depend on the type the
        # database reports (psycopg's numeric types).
        self.result_processors: tuple[Processor | None, ...] | None = None

    def _processors(self, description: Sequence[Any]) -> tuple[Processor | None, ...]:
        """The result processors, made once, from the first cursor's ``description``."""
        if self.result_processors is None:
            self.result_processors = tuple(
                column.type.dialect_impl(self.dialect).result_processor(self.dialect, found[1])
                for column, found in zip(self.columns, description, strict=True)
            )
        return self.result_processors

    def bind(self, values: Mapping[str, Any]) -> dict[str, Any] | list[Any]:
        """The driver's parameters: the statement's literals and ``values``, types processed."""
        params = dict(self.defaults)
        params.update(values)
        for name, process in self.processors:
            params[name] = process(params[name])
        if self.order is not None:
            return [params[name] for name in self.order]
        return params

    def _row(self, cursor: Any, raw: Sequence[Any]) -> Any:
        # Only the first result needs the description (psycopg builds it anew on each call).
        processors = self.result_processors
        if processors is None:
            processors = self._processors(cursor.description)
        return self.row._make(
            [
                value if process is None else process(value)
                for value, process in zip(raw, processors, strict=True)
            ]
        )

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """Run once; the driver's cursor (read it with ``first``/``scalar``/``all``)."""
        cursor = self.cursor(driver(connection))
        cursor.execute(self.sql, self.bind(values))
        return cursor

    def first(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """The first row (a named tuple), or None."""
        return self.first_of(self.execute(connection, values))

    def first_of(self, cursor: Any) -> Any:
        """The first row of ``cursor`` (returned by ``execute``, perhaps in a pipeline), or None."""
        raw = cursor.fetchone()
        row = None if raw is None else self._row(cursor, raw)
        cursor.close()
        return row

    def all(self, connection: Connection, values: Mapping[str, Any]) -> list[Any]:
        cursor = self.execute(connection, values)
        rows = [self._row(cursor, raw) for raw in cursor.fetchall()]
        cursor.close()
        return rows

    def scalar(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        row = self.first(connection, values)
        return None if row is None else row[0]

    def run(self, connection: Connection, values: Mapping[str, Any]) -> None:
        """Run once, reading nothing back."""
        self.execute(connection, values).close()

    def run_many(self, connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run once per row (one ``executemany``), reading nothing back."""
        cursor = self.cursor(driver(connection))
        cursor.executemany(self.sql, [self.bind(row) for row in rows])
        cursor.close()


def table_of(model: Any) -> Table:
    """A mapped class's ``Table`` (typed as one)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def driver(connection: Connection) -> Any:
    """The DBAPI connection beneath ``connection`` (sqlite3 or psycopg)."""
    return connection.connection.dbapi_connection


def insert_of(table: Table, names: Sequence[str]) -> Any:
    """``INSERT INTO table (names...)``, with the columns' constant defaults for the others."""
    return insert(table).values(row_values(table, names))


def row_values(table: Table, names: Sequence[str], prefix: str = "") -> dict[str, Any]:
    """One row's values for an ``INSERT``: a parameter ``prefix + name`` for each of ``names``,
    and the columns' constant defaults for the others.

    A column left out whose default is computed in Python is an error: the driver would not
    compute it.
    """
    values: dict[str, Any] = {
        name: bindparam(prefix + name, type_=table.c[name].type) for name in names
    }
    for column in table.columns:
        if column.key in values or column.default is None:
            continue
        default: Any = column.default
        if not default.is_scalar:
            raise ValueError(f"{table.name}.{column.key} has a computed default; give a value")
        values[column.key] = default.arg
    return values


_cache: dict[tuple[int, str], tuple[ClauseElement, Prepared]] = {}


def prepared(connection: Connection, statement: ClauseElement) -> Prepared:
    """``statement`` compiled for ``connection``'s dialect, once per process.

    For statements built once and kept (module constants): the cache holds them by identity.
    """
    key = (id(statement), connection.dialect.name)
    found = _cache.get(key)
    if found is None:
        found = (statement, Prepared(statement, connection.dialect))
        _cache[key] = found
    return found[1]
