"""The importer: validate a whole source, then write it idempotently, all or nothing (one
transaction on PostgreSQL; on SQLite staged, then published in short steps: `import_rows`).

Each row is matched to the stored row with the same natural key. A new key is inserted; the
same values are left alone; a newer version (a later `update_time`, or for unversioned kinds
any change) revises the row and moves the old version to `record_history`; an older version
is ignored and counted as stale. Any bad row rolls the whole import back and is reported with
its file, line, column, value and reason.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import pickle
import tempfile
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from difflib import get_close_matches
from multiprocessing.connection import Connection as Connection_
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Date, Engine, bindparam, func, select

from kpi_engine import rollups
from kpi_engine.clock import system_clock
from kpi_engine.ingest.formats import (
    CACHEABLE,
    KINDS,
    FieldError,
    ImportKind,
    Parsed,
    is_amount,
    is_time,
)
from kpi_engine.ingest.readers import RowSource, SourceError, read_path
from kpi_engine.instants import EPOCH_SECONDS, day_bounds, zone
from kpi_engine.models import ImportBatch, RecordHistory
from kpi_engine.money import MAX_WHOLE_DIGITS, minor_exponent
from kpi_engine.organisation import Organisation

try:
    import fcntl
except ImportError:  # not on Windows: imports there are not serialised across processes
    fcntl = None  # type: ignore[assignment]

ERROR_LISTING_CAP = 50
# How far past the import's own time a time may lie: platform clocks and ours disagree a little;
# an order dated years ahead is a typo or a wrong column.
FUTURE_SKEW = 86_400
SHOWN_VALUE = 100  # the most of a refused value an error shows
_BATCHES = ImportBatch.__table__  # type: ignore[attr-defined]
_HISTORY = RecordHistory.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RowError:
    """One bad value: where it is, what it was and why it is refused."""

    file: str
    line: int | None
    column: str
    value: str
    reason: str
    unit: str = "line"

    def __str__(self) -> str:
        where = [f"{self.unit} {self.line}"] if self.line is not None else []
        where += [f"column {self.column}"] if self.column else []
        value = f"{self.value!r} " if self.value else ""
        return f"{self.file}: {', '.join(where) + ': ' if where else ''}{value}{self.reason}"


@dataclass
class ImportReport:
    """What an import did, or every reason it did nothing."""

    kind: str
    source: str
    rows: int = 0
    inserted: int = 0
    revised: int = 0
    unchanged: int = 0
    stale: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    batch_id: int | None = None

    @property
    def ok(self) -> bool:
        """True when the source was imported (possibly changing nothing)."""
        return self.error_count == 0

    def add_error(self, error: RowError) -> None:
        """Count an error and keep it for the listing while under the cap."""
        self.error_count += 1
        if len(self.errors) < ERROR_LISTING_CAP:
            self.errors.append(error)

    def render(self) -> str:
        """A short human-readable report."""
        if not self.ok:
            lines = [f"{self.source}: {self.error_count} error(s); nothing was imported."]
            lines += [f"  {e}" for e in self.errors]
            if self.error_count > len(self.errors):
                lines.append(f"  … and {self.error_count - len(self.errors)} more")
            return "\n".join(lines)
        return (
            f"{self.source}: {self.rows} {self.kind} rows — {self.inserted} inserted, "
            f"{self.revised} revised, {self.unchanged} unchanged, "
            f"{self.stale} older than stored (ignored)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "kind": self.kind,
            "source": self.source,
            "ok": self.ok,
            "rows": self.rows,
            "inserted": self.inserted,
            "revised": self.revised,
            "unchanged": self.unchanged,
            "stale": self.stale,
            "error_count": self.error_count,
            "errors": [
                {
                    "file": e.file,
                    e.unit: e.line,
                    "column": e.column,
                    "value": e.value,
                    "reason": e.reason,
                }
                for e in self.errors
            ],
            "batch_id": self.batch_id,
        }


# A parsed row: (line, values in the kind's column order, raw source text). A plain tuple,
# so building it and sending chunks of it to another process stay cheap.
_Row = tuple[int, tuple[Any, ...], str]


@dataclass(slots=True)
class _Stored:
    id: int | None
    values: tuple[Any, ...]
    revision: int
    pending: _Row | None = None  # a row of this import not yet written
    batch: int | None = None  # the import that wrote the stored row


class _Rollback(Exception):
    pass


def import_rows(
    engine: Engine,
    organisation: Organisation,
    kind: ImportKind,
    source: RowSource,
    *,
    chunk_size: int = 5000,
    now: int | None = None,
    parallel: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import `source` as `kind`: all of it, or nothing with every error.

    On PostgreSQL the file is written in one transaction (other writers are never blocked by
    it). On SQLite, where a transaction holds the database's one write lock, the whole file
    is parsed and checked first, then published in steps of at most `chunk_size` rows, each
    its own short transaction, so chat deliveries and other writes get in between; a file
    that fails while publishing is taken back out (see `_publish_in_steps`). `progress` is
    called with the number of rows written so far after each chunk (each step on SQLite).

    With `parallel`, rows are parsed in a forked child process while this one works: about
    twice the throughput on big files. Use it only from a single-threaded program (the CLI);
    forking a threaded server is unsafe. The cyclic garbage collector is then paused for
    the import: it makes no reference cycles, and the collections set off by its millions of
    short-lived tuples cost a fifth of the import's time.
    """
    collecting = parallel and gc.isenabled()
    if collecting:
        gc.disable()
    try:
        return _import_rows(
            engine,
            organisation,
            kind,
            source,
            chunk_size=chunk_size,
            now=now,
            parallel=parallel,
            progress=progress,
        )
    finally:
        if collecting:
            gc.enable()


def _import_rows(
    engine: Engine,
    organisation: Organisation,
    kind: ImportKind,
    source: RowSource,
    *,
    chunk_size: int,
    now: int | None,
    parallel: bool,
    progress: Callable[[int], None] | None,
) -> ImportReport:
    report = ImportReport(kind=kind.name, source=source.name)
    plan = _column_plan(kind, source, report)
    if plan is None:
        return report
    imported_at = int(system_clock()) if now is None else now
    parse = _RowParser(kind, organisation, source, plan, latest=imported_at + FUTURE_SKEW)
    forked = parallel and _FORK is not None
    tail = organisation.settings.attribution.live_tail_minutes
    conflicts: list[RowError] = []
    try:
        if engine.dialect.name == "sqlite":
            chunks = (
                _forked_chunks(source, parse, report, chunk_size, pickled=True)
                if forked
                else _pickled(_chunks(source, parse, report, chunk_size))
            )
            _publish_in_steps(engine, kind, report, source, chunks, imported_at, tail, progress)
        else:
            parsed: Iterator[list[_Row]] = (
                _forked_chunks(source, parse, report, chunk_size)
                if forked
                else _chunks(source, parse, report, chunk_size)
            )
            with engine.begin() as conn:
                writer = _Writer(conn, kind, report, source, imported_at, conflicts, tail)
                for chunk in parsed:
                    if not (report.error_count or conflicts):
                        writer.write(chunk)
                        if progress is not None and not conflicts:
                            progress(report.inserted + report.revised)
                for conflict in conflicts:
                    report.add_error(conflict)
                if report.error_count or report.inserted + report.revised == 0:
                    raise _Rollback  # errors, or nothing changed: leave no trace
                writer.finish()
    except _Rollback:
        report.batch_id = None
    except SourceError as exc:
        report.add_error(RowError(source.name, exc.line, "", "", str(exc), source.unit))
        report.batch_id = None
    report.errors.sort(key=_line)
    return report


def _publish_in_steps(
    engine: Engine,
    kind: ImportKind,
    report: ImportReport,
    source: RowSource,
    chunks: Iterable[bytes],
    imported_at: int,
    tail: int,
    progress: Callable[[int], None] | None,
) -> None:
    """SQLite: stage and check the whole file, then publish it a chunk per transaction.

    Stage: every row is parsed and checked, and the parsed chunks are spooled to a temporary
    file; the database is not touched, so a file with a bad row changes nothing. Publish, under
    the import lock (one import publishes at a time): each chunk is looked up (a read, no
    lock), classified, and written in a transaction of its own.
    The batch's `rows` count stays 0 until the last, short transaction sets it and writes the
    rollup staleness marks: a batch with `rows = 0` is unfinished. A failure while publishing
    (a duplicate or version conflict found against the stored rows, an exception) takes the
    published steps back out (`undo_batch`); a process killed while publishing leaves an
    unfinished batch that the next import on this database takes back out first.
    """
    with tempfile.TemporaryFile(prefix="kpibot-import-") as spool:
        staged = 0
        for chunk in chunks:  # stage and validate: nothing is written
            if not report.error_count:
                spool.write(len(chunk).to_bytes(8, "little"))
                spool.write(chunk)
                staged += 1
        if report.error_count:
            raise _Rollback
        spool.seek(0)
        with _import_lock(engine):
            undo_unfinished(engine)
            _publish(engine, kind, report, source, spool, staged, imported_at, tail, progress)


def _publish(
    engine: Engine,
    kind: ImportKind,
    report: ImportReport,
    source: RowSource,
    spool: IO[bytes],
    staged: int,
    imported_at: int,
    tail: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Write `staged` spooled chunks, one transaction each, then finish the batch."""
    conflicts: list[RowError] = []
    with engine.connect() as conn:
        writer = _Writer(conn, kind, report, source, imported_at, conflicts, tail)
        try:
            for _ in range(staged):
                size = int.from_bytes(spool.read(8), "little")
                writer.write(pickle.loads(spool.read(size)))
                if conflicts:
                    break
                conn.commit()  # one step published: the write lock is released
                if progress is not None:
                    progress(report.inserted + report.revised)
            conn.rollback()
            for conflict in conflicts:
                report.add_error(conflict)
            if not (report.error_count or report.inserted + report.revised == 0):
                writer.finish()
                conn.commit()
                return
        except BaseException:
            conn.rollback()
            if writer.batch_id is not None:
                undo_batch(engine, writer.batch_id)
            report.batch_id = None
            raise
    if writer.batch_id is not None:
        undo_batch(engine, writer.batch_id)
    raise _Rollback


def _pickled(chunks: Iterable[list[_Row]]) -> Iterator[bytes]:
    for chunk in chunks:
        yield pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)


@contextmanager
def _import_lock(engine: Engine) -> Iterator[None]:
    """Hold the SQLite database's import lock: one import publishes at a time, so what an
    import classified against the stored rows stays true until it is written. An OS file lock
    beside the database: a killed process releases it."""
    database = engine.url.database
    if not database or database == ":memory:" or fcntl is None:
        yield
        return
    with open(f"{database}.import-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def undo_unfinished(engine: Engine) -> list[int]:
    """Take back out every unfinished import batch (left by a process killed while
    publishing); the ids undone. Call only under the import lock."""
    with engine.connect() as conn:
        unfinished = [
            int(batch)
            for batch in conn.execute(select(_BATCHES.c.id).where(_BATCHES.c.rows == 0))
            .scalars()
            .all()
        ]
    for batch in unfinished:
        undo_batch(engine, batch)
    return unfinished


def undo_batch(engine: Engine, batch_id: int, step: int = 5000) -> None:
    """Take an unfinished import batch back out, in short transactions: rows it revised get
    their version from before it back (from `record_history`), rows it inserted are deleted,
    then its history entries and the batch itself."""
    with engine.connect() as conn:
        kind_name = conn.execute(
            select(_BATCHES.c.kind).where(_BATCHES.c.id == batch_id)
        ).scalar_one()
        table = KINDS[kind_name].table
        earliest: dict[int, str] = {}
        history = conn.execute(
            select(_HISTORY.c.record_id, _HISTORY.c.data)
            .where(_HISTORY.c.superseded_by_batch == batch_id)
            .order_by(_HISTORY.c.record_id, _HISTORY.c.revision)
        )
        for record_id, data in history:
            earliest.setdefault(int(record_id), data)
    dates = {c.name for c in table.columns if isinstance(c.type, Date)}
    restores: list[dict[str, Any]] = []
    for record_id, data in earliest.items():
        before = json.loads(data)
        if before.get("batch_id") == batch_id:
            continue  # inserted by this batch: deleted below
        restores.append(
            {
                **{
                    k: date.fromisoformat(v) if k in dates and v is not None else v
                    for k, v in before.items()
                    if k in table.c
                },
                "_record": record_id,
            }
        )
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for restore in restores:  # entries written before a column was added lack it
        by_columns[tuple(k for k in restore if k != "_record")].append(restore)
    for names, group in by_columns.items():
        statement = (
            table.update()
            .where(table.c.id == bindparam("_record"))
            .values({k: bindparam(k) for k in names})
        )
        for first in range(0, len(group), step):
            with engine.begin() as conn:
                conn.execute(statement, group[first : first + step])
    with engine.connect() as conn:  # a read: where this batch's own rows begin
        start = conn.execute(
            select(func.min(table.c.id)).where(table.c.batch_id == batch_id)
        ).scalar()
    if start is not None:
        mine = (
            select(table.c.id)
            .where(table.c.id >= start, table.c.batch_id == batch_id)
            .order_by(table.c.id)
            .limit(step)
        )
        while True:
            with engine.begin() as conn:
                if not conn.execute(table.delete().where(table.c.id.in_(mine))).rowcount:
                    break
    entries = select(_HISTORY.c.id).where(_HISTORY.c.superseded_by_batch == batch_id).limit(step)
    while True:
        with engine.begin() as conn:
            if not conn.execute(_HISTORY.delete().where(_HISTORY.c.id.in_(entries))).rowcount:
                break
    with engine.begin() as conn:
        conn.execute(_BATCHES.delete().where(_BATCHES.c.id == batch_id))


def _chunks(
    source: RowSource, parse: _RowParser, report: ImportReport, size: int
) -> Iterator[list[_Row]]:
    """Parsed rows in chunks; after the first bad row, rows are still checked but not yielded."""
    chunk: list[_Row] = []
    for line, values, raw in source.rows:
        report.rows += 1
        row = parse(line, values, raw, report)
        if row is None or report.error_count:
            continue
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk and not report.error_count:
        yield chunk


_FORK = (
    multiprocessing.get_context("fork")
    if "fork" in multiprocessing.get_all_start_methods()
    else None
)


def _forked_chunks(
    source: RowSource, parse: _RowParser, report: ImportReport, size: int, pickled: bool = False
) -> Iterator[Any]:
    """Like _chunks, but parsed by a forked child that streams chunks through a pipe.

    With `pickled`, each chunk comes as pickled bytes (to be spooled as they are), and this
    process, which has nothing else to do meanwhile, parses every other chunk itself: the child
    reads the source and sends those chunks unparsed."""
    assert _FORK is not None
    receiver, sender = _FORK.Pipe(duplex=False)
    child = _FORK.Process(
        target=_parse_in_child,
        args=(sender, receiver, source, parse, report.kind, size, pickled),
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        while True:
            try:
                message = receiver.recv_bytes()
            except EOFError:
                raise RuntimeError("the import's parser process died") from None
            if message[:1] == _ROWS:
                yield message[1:] if pickled else pickle.loads(message[1:])
                continue
            if message[:1] == _UNPARSED:
                chunk = []
                for line, values, raw in pickle.loads(message[1:]):
                    report.rows += 1
                    row = parse(line, values, raw, report)
                    if row is not None:
                        chunk.append(row)
                if not report.error_count:
                    yield pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
                continue
            tag, payload = pickle.loads(message[1:])
            if tag == "done":
                rows, errors, error_count = payload
                report.rows += rows
                # Both processes may have found errors: list the first ones of the file.
                report.errors = sorted([*report.errors, *errors], key=_line)[:ERROR_LISTING_CAP]
                report.error_count += error_count
                return
            elif tag == "source":
                raise SourceError(*payload)
            else:
                raise RuntimeError(f"the import's parser process failed:\n{payload}")
    finally:
        receiver.close()
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()


# A chunk of parsed rows, or of rows for the parent to parse; anything else through the pipe is
# a pickled (tag, payload).
_ROWS, _UNPARSED = b"R", b"U"


def _line(error: RowError) -> int:
    return -1 if error.line is None else error.line


def _send(sender: Connection_, tag: str, payload: Any) -> None:
    sender.send_bytes(b"C" + pickle.dumps((tag, payload)))


def _parse_in_child(
    sender: Connection_,
    receiver: Connection_,
    source: RowSource,
    parse: _RowParser,
    kind: str,
    size: int,
    share: bool = False,
) -> None:
    # The forked copy of the parent's end is closed, so that if the parent dies (kill -9) the
    # pipe has no reader and the next send fails: the child exits instead of blocking forever.
    receiver.close()
    gc.disable()  # a short-lived process that makes no reference cycles
    report = ImportReport(kind=kind, source=source.name)
    protocol = pickle.HIGHEST_PROTOCOL
    try:
        if share:
            for number, rows in enumerate(_batched(source.rows, size)):
                if number % 2:
                    sender.send_bytes(_UNPARSED + pickle.dumps(rows, protocol=protocol))
                    continue
                chunk = []
                for line, values, raw in rows:
                    report.rows += 1
                    row = parse(line, values, raw, report)
                    if row is not None:
                        chunk.append(row)
                if not report.error_count:
                    sender.send_bytes(_ROWS + pickle.dumps(chunk, protocol=protocol))
        else:
            for chunk in _chunks(source, parse, report, size):
                sender.send_bytes(_ROWS + pickle.dumps(chunk, protocol=protocol))
        # The listing cap applies in the parent too; send only what it can show.
        _send(sender, "done", (report.rows, report.errors, report.error_count))
    except SourceError as exc:
        _send(sender, "source", (str(exc), exc.line))
    except Exception:
        _send(sender, "crash", traceback.format_exc())
    finally:
        sender.close()


def _batched(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def import_file(
    engine: Engine,
    organisation: Organisation,
    kind: ImportKind,
    path: Path,
    *,
    parallel: bool = False,
    now: int | None = None,
) -> ImportReport:
    """Import a CSV or XLSX file; a file that cannot be read at all is reported, not raised."""
    try:
        source = read_path(path)
    except SourceError as exc:
        report = ImportReport(kind=kind.name, source=path.name)
        report.add_error(RowError(path.name, exc.line, "", "", str(exc)))
        return report
    return import_rows(engine, organisation, kind, source, parallel=parallel, now=now)


def _column_plan(
    kind: ImportKind, source: RowSource, report: ImportReport
) -> dict[str, int] | None:
    """Where each known column sits in the source; None after reporting header problems."""
    index: dict[str, int] = {}
    unit = source.unit
    separator = _other_separator(kind, source.header)
    if separator is not None:
        reason = (
            f"the columns are separated by {separator}, not commas: save the file as "
            "comma-separated CSV (Excel: “CSV UTF-8 (Comma delimited)”)"
        )
        report.add_error(RowError(source.name, 1, "", "", reason, unit))
        return None
    for position, name in enumerate(source.header):
        if name in kind.column_index:
            if name in index:
                report.add_error(RowError(source.name, 1, name, "", "column appears twice", unit))
            index[name] = position
        else:
            match = get_close_matches(name, list(kind.column_index), n=1)
            hint = f" (did you mean {match[0]!r}?)" if match else ""
            report.add_error(
                RowError(source.name, 1, name, "", f"unknown column for {kind.name}{hint}", unit)
            )
    for name in kind.required:
        if name not in index:
            report.add_error(RowError(source.name, 1, name, "", "required column is missing", unit))
    return None if report.error_count else index


_SEPARATORS = {";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}


def _other_separator(kind: ImportKind, header: list[str]) -> str | None:
    """What separates the columns of a header that is one cell holding several of the kind's
    column names (a file saved where the list separator is ";"), if anything."""
    if len(header) != 1:
        return None
    for separator, called in _SEPARATORS.items():
        names = [part.strip().strip('"') for part in header[0].split(separator)]
        if sum(name in kind.column_index for name in names) >= 2:
            return called
    return None


def _shown(value: str) -> str:
    """A refused value as an error shows it: a cell of a million characters is cut."""
    return value if len(value) <= SHOWN_VALUE else value[:SHOWN_VALUE] + "…"


_RAW = json.JSONEncoder(ensure_ascii=False)


class _RowParser:
    """Parses one source's rows for one kind; built once so the per-row loop stays lean."""

    def __init__(
        self,
        kind: ImportKind,
        organisation: Organisation,
        source: RowSource,
        plan: dict[str, int],
        *,
        latest: int,
    ) -> None:
        self.check = kind.check
        self.latest = latest
        self.times = [(spec.name, plan.get(spec.name)) for spec in kind.columns if is_time(spec)]
        # The first instant of each shop's life, for the shops whose opening day is configured.
        self.opened = {
            shop.id: day_bounds(shop.opened, zone(shop.timezone))[0]
            for shop in organisation.shops.values()
            if shop.opened is not None
        }
        self.organisation = organisation
        self.source = source
        self.width = len(source.header)
        self.steps = [
            (spec.name, plan.get(spec.name), spec.parse, spec.required, spec.default)
            for spec in kind.columns
        ]
        self.quick = _quick_parser(kind, plan, organisation, latest, self.opened)

    def __call__(
        self, line: int, values: list[str], raw: str | None, report: ImportReport
    ) -> _Row | None:
        """The parsed row, or None after reporting every problem in it."""
        if len(values) == self.width:
            try:
                quick = self.quick(values)
            except Exception:
                quick = None
            if quick is not None:
                return line, quick, _RAW.encode(values) if raw is None else raw
        return self.parse_fully(line, values, raw, report)

    def parse_fully(
        self, line: int, values: list[str], raw: str | None, report: ImportReport
    ) -> _Row | None:
        """`__call__` without its quick path: every cell through its column's parser."""
        source = self.source
        count = len(values)
        if count > self.width:
            reason = f"row has {count} fields but the header has {self.width}"
            report.add_error(RowError(source.name, line, "", "", reason, source.unit))
            return None
        parsed: Parsed = {}
        failed = False
        organisation = self.organisation
        for name, position, parse, required, default in self.steps:
            text = values[position].strip() if position is not None and position < count else ""
            if not text:
                if required:
                    report.add_error(
                        RowError(source.name, line, name, "", "missing value", source.unit)
                    )
                    failed = True
                else:
                    parsed[name] = default
                continue
            try:
                parsed[name] = parse(text, parsed, organisation)
            except FieldError as exc:
                report.add_error(
                    RowError(source.name, line, name, _shown(text), str(exc), source.unit)
                )
                failed = True
            except KeyError:
                failed = True  # depends on a column that already failed and was reported
            except (ValueError, ArithmeticError):
                # A parser that did not foresee this cell: the row is refused, never the file.
                reason = "is not a valid value for this column"
                report.add_error(
                    RowError(source.name, line, name, _shown(text), reason, source.unit)
                )
                failed = True
        if failed:
            return None
        opened = self.opened.get(parsed.get("shop_id"))  # type: ignore[arg-type]
        for name, position in self.times:
            value = parsed[name]
            if value is None:
                continue
            if value > self.latest:
                reason = "lies in the future (after the time of this import)"
            elif opened is not None and value < opened:
                reason = "is before the shop opened (`opened` in shops.yaml)"
            else:
                continue
            assert position is not None  # a value was read from the column
            cell = values[position].strip()
            report.add_error(RowError(source.name, line, name, cell, reason, source.unit))
            failed = True
        if failed:
            return None
        problems = self.check(parsed)
        if problems:
            for column, reason in problems:
                report.add_error(RowError(source.name, line, column, "", reason, source.unit))
            return None
        # The dict was filled in column order.
        return line, tuple(parsed.values()), _RAW.encode(values) if raw is None else raw


def _quick_parser(
    kind: ImportKind,
    plan: dict[str, int],
    organisation: Organisation,
    latest: int,
    opened: dict[str, int],
) -> Callable[[list[str]], tuple[Any, ...] | None]:
    """The quick path of `_RowParser`: a function, written out for this kind and header, that
    parses a row with nothing unusual in it, or returns None or raises: then the row is parsed
    in full, which gives the same values or reports each problem.

    It gives the same values as the full parse: it remembers the results of the parsers that
    `CACHEABLE` names (per text, and the earlier column read), reads epoch seconds and plain
    amounts ("41.42" in a 2-decimal currency) directly, and calls every other parser as the
    full parse does. Anything else (an empty required cell, another time or amount form, a
    failed check) sends the row to the full parse. About twice as fast as the full parse."""
    names: dict[str, Any] = {"org": organisation, "opened": opened, "check": kind.check}
    lines = ["def quick(values):", "    p = {}"]
    times: list[str] = []
    for number, spec in enumerate(kind.columns):
        position = plan.get(spec.name)
        name = repr(spec.name)
        if position is None:
            if spec.required:
                return lambda values: None  # the full parse reports the missing column
            names[f"d{number}"] = spec.default
            lines.append(f"    p[{name}] = d{number}")
            continue
        lines.append(f"    t = values[{position}].strip()")
        if spec.required:
            lines.append("    if not t: return None")
        else:
            names[f"d{number}"] = spec.default
            lines.append(f"    if not t: p[{name}] = d{number}")
            lines.append("    else:")
        pad = "    " if spec.required else "        "
        if is_time(spec):
            times.append(spec.name)
            lines.append(f"{pad}if not (t.isdigit() and t.isascii()): return None")
            lines.append(f"{pad}p[{name}] = int(t)")
        elif is_amount(spec):
            # "41.42" in a 2-decimal currency, "1200" in a 0-decimal one: parse_minor reads
            # it as whole * 10**exponent + fraction. Signs, other fractions: the full parse.
            names["exponent"] = minor_exponent
            lines.append(f"{pad}e = exponent(p['currency'])")
            lines.append(f"{pad}w, _, f = t.partition('.')")
            lines.append(
                f"{pad}if len(f) != e or len(w) > {MAX_WHOLE_DIGITS} "
                "or not (w.isdigit() and w.isascii()) "
                "or (e and not (f.isdigit() and f.isascii())): return None"
            )
            lines.append(f"{pad}p[{name}] = int(w + f)")
        elif spec.parse in CACHEABLE and len(CACHEABLE[spec.parse]) <= 1:
            reads = CACHEABLE[spec.parse]
            remembered: dict[Any, Any] = {}  # as many entries as values the parser accepts
            names[f"c{number}"] = remembered
            names[f"f{number}"] = _remembering(remembered, spec.parse, organisation)
            key = f"(t, p.get({reads[0]!r}))" if reads else "t"
            lines.append(f"{pad}k = {key}")
            lines.append(f"{pad}v = c{number}.get(k)")
            lines.append(f"{pad}p[{name}] = f{number}(k, t, p) if v is None else v")
        else:
            names[f"g{number}"] = spec.parse
            lines.append(f"{pad}p[{name}] = g{number}(t, p, org)")
    low, high = EPOCH_SECONDS
    if times:
        lines.append("    o = opened.get(p.get('shop_id'))")
        lines.append(f"    o = {low} if o is None or o < {low} else o")
    for time in times:
        lines.append(f"    v = p[{time!r}]")
        lines.append(f"    if v is not None and not o <= v <= {min(latest, high)}: return None")
    lines.append("    if check(p): return None")
    lines.append("    return tuple(p.values())")
    exec("\n".join(lines), names)
    quick: Callable[[list[str]], tuple[Any, ...] | None] = names["quick"]
    return quick


def _remembering(
    remembered: dict[Any, Any], parse: Callable[[str, Parsed, Organisation], Any], org: Organisation
) -> Callable[[Any, str, Parsed], Any]:
    def parse_and_remember(key: Any, text: str, parsed: Parsed) -> Any:
        value = remembered[key] = parse(text, parsed, org)
        return value

    return parse_and_remember


# PostgreSQL: up to this many key prefixes in a chunk are looked up a query each (`_lookup`).
_PREFIX_QUERIES = 64


class _Writer:
    """Writes chunks of parsed rows inside the import's transaction."""

    def __init__(
        self,
        conn: Connection,
        kind: ImportKind,
        report: ImportReport,
        source: RowSource,
        now: int,
        conflicts: list[RowError],
        tail_minutes: int,
    ) -> None:
        self.conn = conn
        self.conflicts = conflicts
        self.kind = kind
        self.report = report
        self.source = source
        self.now = now
        table = kind.table
        self.table = table
        self._postgres = conn.dialect.name == "postgresql"
        if self._postgres:
            # psycopg prepares a statement after 5 runs; PostgreSQL's generic plan for the
            # 5,000-value key lookup is a sequential scan per chunk. Plan each chunk afresh.
            conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        # The batch row is written with the first changed row: an import that changes nothing
        # writes nothing (and on SQLite never takes the write lock).
        self.batch_id: int | None = None
        self.value_columns = [c.stored_as for c in kind.columns]
        # The rollup hours each written row (its old and new values) makes stale.
        self._marks_of = rollups.marker(kind.name, self.value_columns, tail_minutes)
        self.marks = rollups.Marks()
        names = [c.name for c in kind.columns]
        self.key_positions = [names.index(k) for k in kind.key]
        # A key is always a tuple (itemgetter of one position would return the bare value).
        getter = itemgetter(*self.key_positions, self.key_positions[0])
        self._key_of: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda values: getter(values)[
            :-1
        ]
        self.version_position = names.index(kind.version) if kind.version else None
        key_cols = [table.c[kind.column_index[k].stored_as] for k in kind.key]
        selected_columns = ["id", "revision", "batch_id", *self.value_columns]
        self._sqlite_dates = [
            i for i, c in enumerate(selected_columns) if isinstance(table.c[c].type, Date)
        ]
        # The natural key of a looked-up record (id, revision, batch id, *values), a tuple.
        record_getter = itemgetter(*(3 + i for i in self.key_positions), 0)
        self._record_key: Callable[[Sequence[Any]], tuple[Any, ...]] = lambda record: record_getter(
            record
        )[:-1]
        # Rows are written with the driver's executemany: positional tuples, no per-row
        # SQLAlchemy parameter processing (the import's hot path).
        self.columns = [*self.value_columns, "revision", "batch_id", "raw"]
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        quote = conn.dialect.identifier_preparer.quote
        name = quote(table.name)
        column_list = ", ".join(quote(c) for c in self.columns)
        marks = ", ".join(mark for _ in self.columns)
        self._insert_sql = f"INSERT INTO {name} ({column_list}) VALUES ({marks})"
        self._copy_sql = f"COPY {name} ({column_list}) FROM STDIN"
        assignments = ", ".join(f"{quote(c)} = {mark}" for c in self.columns)
        self._update_sql = f"UPDATE {name} SET {assignments} WHERE id = {mark}"
        selected = ", ".join(quote(c) for c in selected_columns)
        # SQLite: one query per key prefix (platform, shop), the last key part as a JSON array.
        *prefix, last = key_cols
        prefix_match = "".join(f"{quote(c.name)} = ? AND " for c in prefix)
        self._sqlite_lookup_sql = (
            f"SELECT {selected} FROM {name} WHERE {prefix_match}"
            f"{quote(last.name)} IN (SELECT value FROM json_each(?))"
        )
        # PostgreSQL: one query per chunk. LATERAL ... LIMIT 1 keeps it an index probe per key;
        # a plain join lets the planner hash the whole table, which grows with every import.
        arrays = ", ".join(f"%b::{c.type.compile(conn.dialect)}[]" for c in key_cols)
        matches = " AND ".join(f"t.{quote(c.name)} = k.c{i}" for i, c in enumerate(key_cols))
        aliases = ", ".join(f"c{i}" for i in range(len(key_cols)))
        self._lookup_sql = (
            f"SELECT t.* FROM unnest({arrays}) AS k({aliases}) CROSS JOIN LATERAL "
            f"(SELECT {selected} FROM {name} AS t WHERE {matches} LIMIT 1) AS t"
        )
        # ... or one query per key prefix (platform, shop), the last key part as an array: one
        # index scan for the array's keys, quicker than a probe each, when prefixes are few.
        prefix_match = "".join(f"{quote(c.name)} = %b AND " for c in prefix)
        self._prefix_lookup_sql = (
            f"SELECT {selected} FROM {name} WHERE {prefix_match}"
            f"{quote(last.name)} = ANY(%b::{last.type.compile(conn.dialect)}[])"
        )

    def _open_batch(self) -> None:
        if self.batch_id is not None:
            return
        result = self.conn.execute(
            _BATCHES.insert().values(
                kind=self.kind.name,
                source=self.source.name,
                columns=json.dumps(self.source.header, ensure_ascii=False),
                imported_at=self.now,
            )
        )
        primary_key = result.inserted_primary_key
        assert primary_key is not None  # a single-row insert always reports its key
        self.batch_id = int(primary_key[0])
        self.report.batch_id = self.batch_id

    def _driver(self) -> Any:
        """The psycopg connection under this transaction (for COPY and binary parameters)."""
        driver = self.conn.connection.driver_connection
        assert driver is not None  # the transaction holds a live connection
        return driver

    def _record(self, row: _Row, revision: int) -> tuple[Any, ...]:
        return (*row[1], revision, self.batch_id, row[2])

    def _key(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        return self._key_of(values)

    def _version(self, values: tuple[Any, ...]) -> Any:
        return None if self.version_position is None else values[self.version_position]

    def write(self, chunk: list[_Row]) -> None:
        """Classify each row against what is stored (and earlier rows), then write the chunk."""
        key_of = self._key_of
        keyed = [(key_of(row[1]), row) for row in chunk]
        found = self._lookup({key for key, _ in keyed})
        # Rows of this chunk by key: a new key's first row waits in `inserts`; a key met a second
        # time, or a stored row this chunk changes, is followed in `stored`.
        stored: dict[tuple[Any, ...], _Stored] = {}
        inserts: dict[tuple[Any, ...], _Row] = {}
        updates: dict[int, tuple[_Row, int]] = {}
        superseded: list[tuple[int, int]] = []  # (record id, its revision) to copy to history
        pending_history: list[tuple[_Row, int]] = []  # rows of this chunk superseded in it
        versioned = self.version_position is not None
        unchanged = 0
        for key, row in keyed:
            line, values, _ = row
            current = stored.get(key)
            if current is None:
                record = found.get(key)
                if record is None:
                    first = inserts.get(key)
                    if first is None:
                        inserts[key] = row
                        continue
                    current = stored[key] = _Stored(None, first[1], 1, pending=first)
                else:
                    if record[3:] == values:
                        unchanged += 1
                        continue
                    current = stored[key] = _Stored(
                        record[0], record[3:], record[1], batch=record[2]
                    )
            if current.values == values:
                unchanged += 1
                continue
            this_file = current.pending is not None or current.batch == self.batch_id
            if this_file and (
                not versioned or self._version(values) == self._version(current.values)
            ):
                # Two rows of one file for one record, neither newer: which is meant is unknown.
                self.conflicts.append(self._duplicate(row, current))
                continue
            if versioned:
                version, stored_version = self._version(values), self._version(current.values)
                if version < stored_version:
                    self.report.stale += 1
                    continue
                if version == stored_version:
                    name = self.kind.version or ""
                    self.conflicts.append(
                        RowError(
                            self.source.name,
                            line,
                            name,
                            "",
                            f"differs from the stored row with the same {name}; "
                            f"give the change a newer {name}",
                            self.source.unit,
                        )
                    )
                    continue
            # A newer version: the current one goes to history.
            if self._marks_of is not None:
                self.marks.update(self._marks_of(current.values))
            if current.pending is not None:
                pending_history.append((current.pending, current.revision))
            elif current.id is not None:
                superseded.append((current.id, current.revision))
            current.revision += 1
            current.values, current.pending = values, row
            if current.id is None:
                inserts[key] = row
            else:
                updates[current.id] = (row, current.revision)
        self.report.unchanged += unchanged
        if self.conflicts:
            return
        if self._marks_of is not None:
            marks_of, marks = self._marks_of, self.marks
            for row in inserts.values():
                marks.update(marks_of(row[1]))
            for row, _ in updates.values():
                marks.update(marks_of(row[1]))
            marks.fold(above=200_000)  # bounded memory on a year of rows
        if inserts or updates or superseded or pending_history:
            self._open_batch()
        pending_keys = {key_of(row[1]) for row, _ in pending_history}
        need_ids = {key for key in pending_keys if stored[key].id is None}
        self._insert(inserts, stored, need_ids)
        self._history(superseded, pending_history, stored)
        self._apply_updates(updates)

    def _duplicate(self, row: _Row, first: _Stored) -> RowError:
        """The error for a row whose key an earlier row of the same file has, with other
        values and no newer version."""
        kind = self.kind
        names = [*kind.key, *([kind.version] if kind.version else [])]
        key = ", ".join(
            f"{name}={value}" for name, value in zip(kind.key, self._key(row[1]), strict=True)
        )
        unit = self.source.unit
        where = f"{unit} {first.pending[0]}" if first.pending is not None else f"an earlier {unit}"
        return RowError(
            self.source.name,
            row[0],
            kind.key[-1],
            "",
            f"duplicate of {where} ({key}) with other values: one row per "
            f"{' + '.join(names)} in a file",
            self.source.unit,
        )

    def _lookup(self, keys: set[tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        """The stored rows for these natural keys: (id, revision, batch id, *values)."""
        found: dict[tuple[Any, ...], tuple[Any, ...]]
        groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
        for key in keys:
            groups[key[:-1]].append(key[-1])
        if self._postgres and len(groups) <= _PREFIX_QUERIES:
            found = {}
            with self._driver().cursor() as cursor:
                for prefix, lasts in groups.items():
                    cursor.execute(self._prefix_lookup_sql, (*prefix, lasts), binary=True)
                    found.update(self._found(cursor.fetchall()))
            return found
        if self._postgres:
            # One statement for the whole chunk: the keys travel as one array per key column.
            columns: list[Sequence[Any]] = (
                list(zip(*keys, strict=True)) if keys else [() for _ in self.kind.key]
            )
            # Binary parameters: psycopg's text array quoting costs more than the query.
            with self._driver().cursor() as cursor:
                cursor.execute(
                    self._lookup_sql, tuple(list(column) for column in columns), binary=True
                )
                return self._found(cursor.fetchall())
        found = {}
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            for prefix, lasts in groups.items():
                # The keys travel as one JSON array: no thousands of bound parameters.
                keys_json = json.dumps(lasts, default=date.isoformat)
                records = cursor.execute(self._sqlite_lookup_sql, (*prefix, keys_json)).fetchall()
                if self._sqlite_dates:
                    records = [self._from_sqlite(record) for record in records]
                found.update(self._found(records))
        finally:
            cursor.close()
        return found

    def _from_sqlite(self, record: Sequence[Any]) -> tuple[Any, ...]:
        """A raw SQLite row with dates as Python has them (as parsed rows do). Booleans stay
        0 and 1, which compare equal to False and True."""
        values = list(record)
        for position in self._sqlite_dates:
            if values[position] is not None:
                values[position] = date.fromisoformat(values[position])
        return tuple(values)

    def _found(self, records: Iterable[Sequence[Any]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        key_of = self._record_key
        return {key_of(record): tuple(record) for record in records}

    def _insert(
        self,
        inserts: dict[tuple[Any, ...], _Row],
        stored: dict[tuple[Any, ...], _Stored],
        need_ids: set[tuple[Any, ...]],
    ) -> None:
        if not inserts:
            return
        batch = self.batch_id
        rows = [
            (*row[1], 1 if key not in stored else stored[key].revision, batch, row[2])
            for key, row in inserts.items()
        ]
        if self._postgres:
            # COPY is PostgreSQL's bulk path: several times faster than an INSERT per row.
            with (
                self._driver().cursor() as cursor,
                cursor.copy(self._copy_sql) as copy,
            ):
                for record in rows:
                    copy.write_row(record)
        else:
            self.conn.exec_driver_sql(self._insert_sql, rows)
        self.report.inserted += len(inserts)
        if need_ids:  # history entries of this chunk point at rows inserted just now
            for key, record in self._lookup(need_ids).items():
                stored[key].id = record[0]

    def _history(
        self,
        superseded: list[tuple[int, int]],
        pending: list[tuple[_Row, int]],
        stored: dict[tuple[Any, ...], _Stored],
    ) -> None:
        entries: list[dict[str, Any]] = []
        if superseded:
            revisions = dict(superseded)
            query = select(self.table).where(self.table.c.id.in_(list(revisions)))
            for record in self.conn.execute(query).mappings():
                record_id = int(record["id"])
                entries.append(self._history_entry(record_id, revisions[record_id], dict(record)))
        for row, revision in pending:
            pending_id = stored[self._key(row[1])].id
            assert pending_id is not None  # inserted earlier in this chunk
            data = dict(zip(self.columns, self._record(row, revision), strict=True))
            entries.append(self._history_entry(pending_id, revision, data))
        if entries:
            self.conn.execute(_HISTORY.insert(), entries)
        self.report.revised += len(superseded) + len(pending)

    def _history_entry(self, record_id: int, revision: int, data: dict[str, Any]) -> dict[str, Any]:
        data = {
            k: v.isoformat() if isinstance(v, date) else v for k, v in data.items() if k != "id"
        }
        return {
            "kind": self.kind.name,
            "record_id": record_id,
            "revision": revision,
            "data": json.dumps(data, ensure_ascii=False, sort_keys=True),
            "superseded_at": self.now,
            "superseded_by_batch": self.batch_id,
        }

    def _apply_updates(self, updates: dict[int, tuple[_Row, int]]) -> None:
        if not updates:
            return
        params = [
            (*self._record(row, revision), record_id)
            for record_id, (row, revision) in updates.items()
        ]
        self.conn.exec_driver_sql(self._update_sql, params)

    def finish(self) -> None:
        """Record the outcome counts on the import batch, and what rollups it made stale."""
        report = self.report
        self.marks.write(self.conn)
        self.conn.execute(
            _BATCHES.update()
            .where(_BATCHES.c.id == self.batch_id)
            .values(
                rows=report.rows,
                inserted=report.inserted,
                revised=report.revised,
                unchanged=report.unchanged,
                stale=report.stale,
            )
        )
