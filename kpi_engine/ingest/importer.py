"""The importer: validate a whole source, then write it idempotently in one transaction.

Each row is matched to the stored row with the same natural key. A new key is inserted; the
same values are left alone; a newer version (a later `update_time`, or for unversioned kinds
any change) revises the row and moves the old version to `record_history`; an older version
is ignored and counted as stale. Any bad row rolls the whole import back and is reported with
its file, line, column, value and reason.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select

from kpi_engine.ingest.formats import STORED_AS, FieldError, ImportKind, Parsed
from kpi_engine.ingest.readers import RowSource, SourceError, read_path
from kpi_engine.models import ImportBatch, RecordHistory
from kpi_engine.organisation import Organisation

ERROR_LISTING_CAP = 50
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


@dataclass
class _Row:
    line: int
    values: dict[str, Any]  # stored column -> value
    key: tuple[Any, ...]
    version: Any
    row_hash: str
    raw: str


@dataclass
class _Stored:
    id: int | None
    version: Any
    row_hash: str
    revision: int
    pending: _Row | None = None  # a row of this import not yet written


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
) -> ImportReport:
    """Import `source` as `kind`: all of it in one transaction, or nothing with every error."""
    report = ImportReport(kind=kind.name, source=source.name)
    plan = _column_plan(kind, source, report)
    if plan is None:
        return report
    imported_at = int(time.time()) if now is None else now
    try:
        with engine.begin() as conn:
            writer = _Writer(conn, kind, report, source, imported_at)
            chunk: list[_Row] = []
            for line, values in source.rows:
                report.rows += 1
                row = _parse(kind, organisation, source, plan, line, values, report)
                if row is None or not report.ok:
                    continue  # keep validating; nothing will be written
                chunk.append(row)
                if len(chunk) >= chunk_size:
                    writer.write(chunk)
                    chunk = []
            if report.ok and chunk:
                writer.write(chunk)
            if not report.ok or report.inserted + report.revised == 0:
                raise _Rollback  # errors, or nothing changed: leave no trace
            writer.finish()
    except _Rollback:
        report.batch_id = None
    except SourceError as exc:
        report.add_error(RowError(source.name, exc.line, "", "", str(exc)))
        report.batch_id = None
    return report


def _column_plan(
    kind: ImportKind, source: RowSource, report: ImportReport
) -> list[tuple[str, int | None]] | None:
    index: dict[str, int] = {}
    header_unit = "line" if source.unit == "line" else "item"
    for position, name in enumerate(source.header):
        if name in kind.column_index:
            if name in index:
                report.add_error(
                    RowError(source.name, 1, name, "", "column appears twice", header_unit)
                )
            index[name] = position
        else:
            from difflib import get_close_matches

            match = get_close_matches(name, list(kind.column_index), n=1)
            hint = f" (did you mean {match[0]!r}?)" if match else ""
            report.add_error(
                RowError(
                    source.name, 1, name, "", f"unknown column for {kind.name}{hint}", header_unit
                )
            )
    for name in kind.required:
        if name not in index:
            report.add_error(
                RowError(source.name, 1, name, "", "required column is missing", header_unit)
            )
    if not report.ok:
        return None
    return [(spec.name, index.get(spec.name)) for spec in kind.columns]


def _parse(
    kind: ImportKind,
    organisation: Organisation,
    source: RowSource,
    plan: list[tuple[str, int | None]],
    line: int,
    values: list[str],
    report: ImportReport,
) -> _Row | None:
    if len(values) > len(source.header):
        report.add_error(
            RowError(
                source.name,
                line,
                "",
                "",
                f"row has {len(values)} fields but the header has {len(source.header)}",
                source.unit,
            )
        )
        return None
    parsed: Parsed = {}
    failed = False
    for name, position in plan:
        spec = kind.column_index[name]
        text = values[position].strip() if position is not None and position < len(values) else ""
        if not text:
            if spec.required:
                report.add_error(
                    RowError(source.name, line, name, "", "missing value", source.unit)
                )
                failed = True
            else:
                parsed[name] = spec.default
            continue
        try:
            parsed[name] = spec.parse(text, parsed, organisation)
        except FieldError as exc:
            report.add_error(RowError(source.name, line, name, text, str(exc), source.unit))
            failed = True
        except KeyError:
            failed = True  # depends on a column that already failed and was reported
    if failed:
        return None
    for column, reason in kind.check(parsed):
        report.add_error(RowError(source.name, line, column, "", reason, source.unit))
        failed = True
    if failed:
        return None
    stored = {STORED_AS.get(name, name): value for name, value in parsed.items()}
    digest = hashlib.blake2b(repr(tuple(stored.values())).encode(), digest_size=16).hexdigest()
    return _Row(
        line=line,
        values=stored,
        key=tuple(parsed[k] for k in kind.key),
        version=parsed[kind.version] if kind.version else None,
        row_hash=digest,
        raw=json.dumps(values, ensure_ascii=False),
    )


class _Writer:
    """Writes chunks of parsed rows inside the import's transaction."""

    def __init__(
        self, conn: Connection, kind: ImportKind, report: ImportReport, source: RowSource, now: int
    ) -> None:
        self.conn = conn
        self.kind = kind
        self.report = report
        self.source = source
        self.now = now
        self.table = kind.table
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
        key_cols = [self.table.c[k] for k in kind.key]
        self._prefix, self._last = key_cols[:-1], key_cols[-1]
        version_col = [self.table.c[kind.version]] if kind.version else []
        self._lookup_cols = [
            self.table.c.id,
            self.table.c.revision,
            self.table.c.row_hash,
            *version_col,
            *key_cols,
        ]
        self._update = (
            self.table.update()
            .where(self.table.c.id == bindparam("_id"))
            .values(
                {
                    c: bindparam(c)
                    for c in (*self._value_columns(), "revision", "row_hash", "batch_id", "raw")
                }
            )
        )

    def _value_columns(self) -> list[str]:
        return [STORED_AS.get(c.name, c.name) for c in self.kind.columns]

    def write(self, chunk: list[_Row]) -> None:
        stored = self._lookup({row.key for row in chunk})
        inserts: dict[tuple[Any, ...], _Row] = {}
        updates: dict[int, tuple[_Row, int]] = {}
        superseded: list[tuple[int, int]] = []  # (record id, its revision) to copy to history
        pending_history: list[tuple[_Row, int]] = []  # rows of this chunk superseded in it
        for row in chunk:
            current = stored.get(row.key)
            if current is None:
                stored[row.key] = _Stored(None, row.version, row.row_hash, 1, pending=row)
                inserts[row.key] = row
                continue
            if current.row_hash == row.row_hash:
                self.report.unchanged += 1
                continue
            if self.kind.version is not None:
                if row.version < current.version:
                    self.report.stale += 1
                    continue
                if row.version == current.version:
                    self.report.add_error(
                        RowError(
                            self.source.name,
                            row.line,
                            self.kind.version,
                            "",
                            "differs from the stored row with the same "
                            f"{self.kind.version}; give the change a newer {self.kind.version}",
                            self.source.unit,
                        )
                    )
                    continue
            # A newer version: the current one goes to history.
            if current.pending is not None:
                pending_history.append((current.pending, current.revision))
            elif current.id is not None:
                superseded.append((current.id, current.revision))
            current.revision += 1
            current.version, current.row_hash, current.pending = row.version, row.row_hash, row
            if current.id is None:
                inserts[row.key] = row
            else:
                updates[current.id] = (row, current.revision)
        if not self.report.ok:
            return
        self._insert(
            inserts, stored, {row.key for row, _ in pending_history if stored[row.key].id is None}
        )
        self._history(superseded, pending_history, stored)
        self._apply_updates(updates)
        for current in stored.values():
            current.pending = None

    def _lookup(self, keys: set[tuple[Any, ...]]) -> dict[tuple[Any, ...], _Stored]:
        groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
        for key in keys:
            groups[key[:-1]].append(key[-1])
        found: dict[tuple[Any, ...], _Stored] = {}
        offset = 3 + (1 if self.kind.version else 0)
        for prefix, lasts in groups.items():
            query = select(*self._lookup_cols).where(
                *[col == value for col, value in zip(self._prefix, prefix, strict=True)],
                self._last.in_(lasts),
            )
            for record in self.conn.execute(query):
                version = record[3] if self.kind.version else None
                found[tuple(record[offset:])] = _Stored(record[0], version, record[2], record[1])
        return found

    def _insert(
        self,
        inserts: dict[tuple[Any, ...], _Row],
        stored: dict[tuple[Any, ...], _Stored],
        need_ids: set[tuple[Any, ...]],
    ) -> None:
        if not inserts:
            return
        rows = [
            {
                **row.values,
                "revision": stored[key].revision,
                "row_hash": row.row_hash,
                "batch_id": self.batch_id,
                "raw": row.raw,
            }
            for key, row in inserts.items()
        ]
        self.conn.execute(self.table.insert(), rows)
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
                entries.append(
                    self._history_entry(int(record["id"]), revisions[record["id"]], dict(record))
                )
        for row, revision in pending:
            record_id = stored[row.key].id
            assert record_id is not None  # inserted earlier in this chunk
            entries.append(
                self._history_entry(
                    record_id,
                    revision,
                    {
                        **row.values,
                        "revision": revision,
                        "row_hash": row.row_hash,
                        "batch_id": self.batch_id,
                        "raw": row.raw,
                    },
                )
            )
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
            {
                **row.values,
                "_id": record_id,
                "revision": revision,
                "row_hash": row.row_hash,
                "batch_id": self.batch_id,
                "raw": row.raw,
            }
            for record_id, (row, revision) in updates.items()
        ]
        self.conn.execute(self._update, params)

    def finish(self) -> None:
        report = self.report
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


def import_file(
    engine: Engine, organisation: Organisation, kind: ImportKind, path: Path
) -> ImportReport:
    """Import a CSV or XLSX file; a file that cannot be read at all is reported, not raised."""
    try:
        source = read_path(path)
    except SourceError as exc:
        report = ImportReport(kind=kind.name, source=path.name)
        report.add_error(RowError(path.name, exc.line, "", "", str(exc)))
        return report
    return import_rows(engine, organisation, kind, source)
