"""Units of work: every write of one chat command commits together at its end, or none of it.

A store opens its transactions with `writing(engine)` and reads with `reading(engine)`. Outside
a unit these are `engine.begin()` and `engine.connect()`. Inside `unit_of_work(engine)` (the
router opens one around each command) they use the unit's one connection and transaction, so
a command that fails after writing — an appeal stored, then an error — has changed nothing,
and what it wrote is read back before it commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Connection, Engine


class _Unit:
    """One unit's connection and transaction, opened at its first read or write (a command
    that touches no store costs nothing)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None
        self.after: list[Callable[[], None]] = []  # run once the unit has committed

    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self.engine.connect()
            self._connection.begin()
        return self._connection

    def end(self, *, commit: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if commit:
                connection.commit()
            else:
                connection.rollback()
        finally:
            connection.close()


_CURRENT: ContextVar[_Unit | None] = ContextVar("kpibot_unit_of_work", default=None)


def _unit_of(engine: Engine) -> _Unit | None:
    unit = _CURRENT.get()
    return unit if unit is not None and unit.engine is engine else None


def after_commit(engine: Engine, action: Callable[[], None]) -> None:
    """Run `action` once what the open unit of work on `engine` wrote is committed (dropped if
    it rolls back), or now when no unit is open: a reply is sent only after the answer and
    its effects are stored, never about something that was then undone."""
    unit = _unit_of(engine)
    if unit is None:
        action()
    else:
        unit.after.append(action)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[None]:
    """Run a block whose store writes on `engine` commit at its end, or roll back together
    when it raises. Inside another unit on the same engine, that unit decides."""
    if _unit_of(engine) is not None:
        yield
        return
    unit = _Unit(engine)
    token = _CURRENT.set(unit)
    try:
        try:
            yield
        except BaseException:
            unit.end(commit=False)
            raise
        unit.end(commit=True)
    finally:
        _CURRENT.reset(token)
    for action in unit.after:
        action()


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction for one store operation: its own, or a part of the open unit of work."""
    unit = _unit_of(engine)
    if unit is None:
        with engine.begin() as connection:
            yield connection
        return
    connection = unit.connection()
    if connection.dialect.name == "postgresql":
        # A failed statement spoils a PostgreSQL transaction: a savepoint keeps the failure to
        # this operation, for a store that catches it (a unique key already taken).
        with connection.begin_nested():
            yield connection
        return
    # SQLite undoes a failed statement alone; pysqlite's savepoints would end the transaction.
    yield connection


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads: inside a unit of work its own (which sees what it wrote)."""
    unit = _unit_of(engine)
    if unit is None:
        with engine.connect() as connection:
            yield connection
        return
    yield unit.connection()
