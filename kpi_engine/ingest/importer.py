"""The importer: validate a whole source, then write it idempotently in one transaction.

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
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from difflib import get_close_matches
from multiprocessing.connection import Connection as Connection_
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Connection, Date, Engine, select

from kpi_engine import rollups
from kpi_engine.clock import system_clock
from kpi_engine.ingest.formats import FieldError, ImportKind, Parsed, is_time
from kpi_engine.ingest.readers import RowSource, SourceError, read_path
from kpi_engine.instants import day_bounds, zone
from kpi_engine.models import ImportBatch, RecordHistory
from kpi_engine.organisation import Organisation

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
) -> ImportReport:
    """Import `source` as `kind`: all of it in one transaction, or nothing with every error.

    With `parallel`, rows are parsed in a forked child process while this one writes: about
    twice the throughput on big files. Use it only from a single-threaded program (the CLI);
    forking a threaded server is unsafe.
    """
    report = ImportReport(kind=kind.name, source=source.name)
    plan = _column_plan(kind, source, report)
    if plan is None:
        return report
    imported_at = int(system_clock()) if now is None else now
    parse = _RowParser(kind, organisation, source, plan, latest=imported_at + FUTURE_SKEW)
    chunks = (
        _forked_chunks(source, parse, report, chunk_size)
        if parallel and _FORK is not None
        else _chunks(source, parse, report, chunk_size)
    )
    conflicts: list[RowError] = []
    try:
        with engine.begin() as conn:
            tail = organisation.settings.attribution.live_tail_minutes
            writer = _Writer(conn, kind, report, source, imported_at, conflicts, tail)
            for chunk in chunks:
                if not (report.error_count or conflicts):
                    writer.write(chunk)
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
    report.errors.sort(key=lambda e: -1 if e.line is None else e.line)
    return report


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
    source: RowSource, parse: _RowParser, report: ImportReport, size: int
) -> Iterator[list[_Row]]:
    """Like _chunks, but parsed by a forked child that streams chunks through a pipe."""
    assert _FORK is not None
    receiver, sender = _FORK.Pipe(duplex=False)
    child = _FORK.Process(
        target=_parse_in_child,
        args=(sender, receiver, source, parse, report.kind, size),
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        while True:
            try:
                tag, payload = receiver.recv()
            except EOFError:
                raise RuntimeError("the import's parser process died") from None
            if tag == "rows":
                yield payload
            elif tag == "done":
                rows, errors, error_count = payload
                report.rows += rows
                for error in errors:
                    report.add_error(error)
                report.error_count += error_count - len(errors)
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


def _parse_in_child(
    sender: Connection_,
    receiver: Connection_,
    source: RowSource,
    parse: _RowParser,
    kind: str,
    size: int,
) -> None:
    # The forked copy of the parent's end is closed, so that if the parent dies (kill -9) the
    # pipe has no reader and the next send fails: the child exits instead of blocking forever.
    receiver.close()
    gc.disable()  # a short-lived process that makes no reference cycles
    report = ImportReport(kind=kind, source=source.name)
    try:
        for chunk in _chunks(source, parse, report, size):
            sender.send(("rows", chunk))
        # The listing cap applies in the parent too; send only what it can show.
        sender.send(("done", (report.rows, report.errors, report.error_count)))
    except SourceError as exc:
        sender.send(("source", (str(exc), exc.line)))
    except Exception:
        sender.send(("crash", traceback.format_exc()))
    finally:
        sender.close()


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

    def __call__(
        self, line: int, values: list[str], raw: str | None, report: ImportReport
    ) -> _Row | None:
        """The parsed row, or None after reporting every problem in it."""
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
        result = conn.execute(
            _BATCHES.insert().values(
                kind=kind.name,
                source=source.name,
                columns=json.dumps(source.header, ensure_ascii=False),
                imported_at=now,
            )
        )
        primary_key = result.inserted_primary_key
        assert primary_key is not None  # a single-row insert always reports its key
        self.batch_id = int(primary_key[0])
        report.batch_id = self.batch_id
        self.value_columns = [c.stored_as for c in kind.columns]
        # The rollup hours each written row (its old and new values) makes stale.
        self._marks_of = rollups.marker(kind.name, self.value_columns, tail_minutes)
        self.marks = rollups.Marks()
        names = [c.name for c in kind.columns]
        self.key_positions = [names.index(k) for k in kind.key]
        self.version_position = names.index(kind.version) if kind.version else None
        key_cols = [table.c[kind.column_index[k].stored_as] for k in kind.key]
        selected_columns = ["id", "revision", "batch_id", *self.value_columns]
        self._sqlite_types: list[Callable[[Any], Any] | None] = [
            bool
            if isinstance(table.c[c].type, Boolean)
            else date.fromisoformat
            if isinstance(table.c[c].type, Date)
            else None
            for c in selected_columns
        ]
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
        arrays = ", ".join(f"%s::{c.type.compile(conn.dialect)}[]" for c in key_cols)
        matches = " AND ".join(f"t.{quote(c.name)} = k.c{i}" for i, c in enumerate(key_cols))
        aliases = ", ".join(f"c{i}" for i in range(len(key_cols)))
        self._lookup_sql = (
            f"SELECT t.* FROM unnest({arrays}) AS k({aliases}) CROSS JOIN LATERAL "
            f"(SELECT {selected} FROM {name} AS t WHERE {matches} LIMIT 1) AS t"
        )

    def _driver(self) -> Any:
        """The psycopg connection under this transaction (for COPY and binary parameters)."""
        driver = self.conn.connection.driver_connection
        assert driver is not None  # the transaction holds a live connection
        return driver

    def _record(self, row: _Row, revision: int) -> tuple[Any, ...]:
        return (*row[1], revision, self.batch_id, row[2])

    def _key(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(values[i] for i in self.key_positions)

    def _version(self, values: tuple[Any, ...]) -> Any:
        return None if self.version_position is None else values[self.version_position]

    def write(self, chunk: list[_Row]) -> None:
        """Classify each row against what is stored (and earlier rows), then write the chunk."""
        key_of = self._key
        keyed = [(key_of(row[1]), row) for row in chunk]
        stored = self._lookup({key for key, _ in keyed})
        inserts: dict[tuple[Any, ...], _Row] = {}
        updates: dict[int, tuple[_Row, int]] = {}
        superseded: list[tuple[int, int]] = []  # (record id, its revision) to copy to history
        pending_history: list[tuple[_Row, int]] = []  # rows of this chunk superseded in it
        versioned = self.version_position is not None
        for key, row in keyed:
            line, values, _ = row
            current = stored.get(key)
            if current is None:
                stored[key] = _Stored(None, values, 1, pending=row)
                inserts[key] = row
                continue
            if current.values == values:
                self.report.unchanged += 1
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
        if self.conflicts:
            return
        if self._marks_of is not None:
            marks_of, marks = self._marks_of, self.marks
            for row in inserts.values():
                marks.update(marks_of(row[1]))
            for row, _ in updates.values():
                marks.update(marks_of(row[1]))
            marks.fold(above=200_000)  # bounded memory on a year of rows
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

    def _lookup(self, keys: set[tuple[Any, ...]]) -> dict[tuple[Any, ...], _Stored]:
        """The stored rows (id, revision, values) for these natural keys."""
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
        groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
        for key in keys:
            groups[key[:-1]].append(key[-1])
        found: dict[tuple[Any, ...], _Stored] = {}
        for prefix, lasts in groups.items():
            # The keys travel as one JSON array: no thousands of bound parameters to process.
            keys_json = json.dumps(lasts, default=date.isoformat)
            records = self.conn.exec_driver_sql(self._sqlite_lookup_sql, (*prefix, keys_json))
            found.update(self._found(self._from_sqlite(record) for record in records))
        return found

    def _from_sqlite(self, record: Sequence[Any]) -> tuple[Any, ...]:
        """A raw SQLite row with booleans and dates as Python has them (as parsed rows do)."""
        return tuple(
            value if convert is None or value is None else convert(value)
            for value, convert in zip(record, self._sqlite_types, strict=True)
        )

    def _found(self, records: Iterable[Sequence[Any]]) -> dict[tuple[Any, ...], _Stored]:
        found: dict[tuple[Any, ...], _Stored] = {}
        positions = self.key_positions
        for record in records:
            values = tuple(record[3:])
            found[tuple(values[i] for i in positions)] = _Stored(
                record[0], values, record[1], batch=record[2]
            )
        return found

    def _insert(
        self,
        inserts: dict[tuple[Any, ...], _Row],
        stored: dict[tuple[Any, ...], _Stored],
        need_ids: set[tuple[Any, ...]],
    ) -> None:
        if not inserts:
            return
        rows = [self._record(row, stored[key].revision) for key, row in inserts.items()]
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
            for key, current in self._lookup(need_ids).items():
                stored[key].id = current.id

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
