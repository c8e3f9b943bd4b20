"""Row readers for CSV, XLSX and JSON sources: every value reaches the parser as text."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any


class SourceError(ValueError):
    """A source that cannot be read as a table (bad type, encoding or JSON), maybe at a line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class RowSource:
    """A header plus numbered rows; `unit` names what a number counts (line of a file, item).

    Each row is (number, values, raw): raw is the record's original text where the source has
    one (CSV), else None and the importer keeps the values themselves.
    """

    name: str
    header: list[str]
    rows: Iterable[tuple[int, list[str], str | None]]
    unit: str = "line"


def read_path(path: Path) -> RowSource:
    """A CSV or XLSX file, chosen by its extension."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path)
    if suffix in (".csv", ".txt", ""):
        return read_csv(path)
    raise SourceError(f"unsupported file type {suffix!r} (use .csv or .xlsx)")


def read_csv(path: Path) -> RowSource:
    """A comma-separated UTF-8 file (a BOM from Excel is fine); line numbers are physical."""
    handle = path.open("r", encoding="utf-8-sig", newline="")
    return _csv_source(path.name, handle, path)


def read_csv_text(text: str, name: str) -> RowSource:
    """CSV content already in memory (an HTTP body)."""
    return _csv_source(name, io.StringIO(text.removeprefix("\ufeff"), newline=""))


def _not_utf8(path: Path) -> SourceError:
    """Where a file stops being UTF-8 (the first line that is not), and what it likely is.

    The text reader decodes ahead in blocks, so the line it fails on is not the bad one;
    this reads the file again line by line (only when it has failed)."""
    line = 0
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8-sig" if line == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                return SourceError(f"not UTF-8 text ({exc.reason}){_guess(raw)}", line)
    return SourceError("not UTF-8 text", line or None)


def _guess(raw: bytes) -> str:
    """What a line that is not UTF-8 probably is, and what to do about it."""
    if raw.startswith(b"PK\x03\x04"):
        return "; it looks like an Excel workbook: give it the .xlsx extension"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "; it is UTF-16 (Excel's “Unicode Text”): save it as “CSV UTF-8”"
    if b"\x00" in raw:
        return "; it looks like a binary file, not CSV text"
    return "; saved as GBK/GB18030 or Shift_JIS? save it as “CSV UTF-8” (Excel) or UTF-8"


def _csv_source(name: str, handle: io.TextIOBase | Any, path: Path | None = None) -> RowSource:
    records = _csv_records(handle, path)  # closes the handle when it ends or fails
    first = next(records, None)
    if first is None:
        raise SourceError("the file is empty (expected a header row)")
    _, header, _ = first
    return RowSource(name, [h.strip() for h in header], records)


def _csv_records(
    handle: io.TextIOBase | Any, path: Path | None = None
) -> Iterator[tuple[int, list[str], str]]:
    """(first line, fields, record text) per CSV record, RFC 4180 quoting included.

    A line without quotes is split directly (the common case, several times faster than the
    csv module); a record with quotes, possibly spanning lines, goes through csv.reader.
    """
    line = 0
    pending: list[str] = []
    try:
        for physical in handle:
            line += 1
            if not pending and '"' not in physical:
                text = physical.rstrip("\r\n")
                if text:  # blank lines carry nothing
                    yield line, text.split(","), text
                continue
            pending.append(physical)
            record = "".join(pending)
            if record.count('"') % 2:
                continue  # a quoted field goes on over the next line
            start, pending = line - len(pending) + 1, []
            text = record.rstrip("\r\n")
            yield start, next(csv.reader([text], strict=True)), text
        if pending:
            raise SourceError("a quoted field is never closed", line - len(pending) + 1)
    except UnicodeDecodeError as exc:
        if path is not None:
            raise _not_utf8(path) from None
        raise SourceError(f"not UTF-8 text ({exc.reason})", line + 1) from None
    except csv.Error as exc:
        raise SourceError(f"malformed quoting: {exc}", line) from None
    finally:
        handle.close()


def read_xlsx(path: Path) -> RowSource:
    """The first sheet of an Excel workbook; numbers are row numbers in the sheet."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise SourceError(f"not a readable .xlsx workbook ({exc})") from None
    sheet = workbook.worksheets[0]
    iterator = sheet.iter_rows(values_only=True)
    try:
        header = [_cell_text(v) for v in next(iterator)]
    except StopIteration:
        workbook.close()
        raise SourceError("the first sheet is empty (expected a header row)") from None
    while header and header[-1] == "":
        header.pop()

    def rows() -> Iterator[tuple[int, list[str], str | None]]:
        try:
            for number, values in enumerate(iterator, start=2):
                texts = [_cell_text(v) for v in values[: len(header)]]
                if any(texts):
                    yield number, texts, None
        finally:
            workbook.close()

    return RowSource(path.name, header, rows())


def _cell_text(value: Any) -> str:
    """An Excel cell or JSON value as the text a person would have typed.

    No float noise (Excel's 12.0 is "12"), naive local times stay naive, a JSON list of ids
    becomes "a,b", and a JSON object its JSON text.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list):
        return ",".join(_cell_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value).strip()


def read_json_text(text: str, name: str) -> RowSource:
    """A JSON array of objects; numbers keep their exact text (no float rounding)."""
    try:
        items = json.loads(text, parse_float=str, parse_int=str)
    except json.JSONDecodeError as exc:
        raise SourceError(f"invalid JSON at column {exc.colno}: {exc.msg}", exc.lineno) from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SourceError("expected a JSON array of objects")
    header: list[str] = []
    seen: set[str] = set()
    for item in items:
        for key in item:
            if key not in seen:
                seen.add(key)
                header.append(key)

    rows = [
        (n, [_cell_text(item.get(k)) for k in header], json.dumps(item, ensure_ascii=False))
        for n, item in enumerate(items, start=1)
    ]
    return RowSource(name, header, rows, unit="item")
