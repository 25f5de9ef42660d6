"""Spreadsheet output that streams: CSV (with a BOM, so spreadsheet programs read the Chinese as UTF-8) a row
at a time, and XLSX with openpyxl's write-only workbook saved to a temporary file and sent in chunks. Rows
come from an iterator and are never all in memory (the device registry and the case export use both)."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 256 * 1024


FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""What a spreadsheet may read as the start of a formula (OWASP, CSV Injection: = + - @ tab and carriage return;
and their full-width forms, which some spreadsheet programs take as the same)."""


def inert(v: Any) -> Any:
    """A cell that no spreadsheet runs: text starting like a formula gets a leading apostrophe (OWASP's rule,
    which spreadsheets show as the text itself). Numbers stay numbers."""
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v


def uninert(v: Any) -> Any:
    """A cell read back from a sheet this hub wrote: `inert`'s apostrophe taken off again."""
    return v[1:] if isinstance(v, str) and v.startswith("'") and v[1:].startswith(FORMULA_START) else v


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    yield "\ufeff" + buf.getvalue()
    for row in rows:
        buf.seek(0)
        buf.truncate()
        w.writerow([inert(v) for v in row])
        yield buf.getvalue()


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]], size: int = 64 * 1024) -> Iterator[bytes]:
    """`csv_lines` gathered into pieces of about `size` bytes: a streaming response moves each piece from the
    worker thread in one hop, not one hop per row."""
    part: list[str] = []
    have = 0
    for line in csv_lines(header, rows):
        part.append(line)
        have += len(line)
        if have >= size:
            yield "".join(part).encode()
            part, have = [], 0
    if part:
        yield "".join(part).encode()


def _cell(v: Any) -> Any:
    """A value a worksheet can hold, as text that is never a formula (`inert`; openpyxl writes a string starting
    with `=` as a live formula): XML 1.0 has no place for most control characters (a title or a name may carry
    them), so each becomes U+FFFD instead of failing the whole sheet."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", inert(v)) if isinstance(v, str) else v


def _xlsx_to(target: Any, header: Sequence[str], rows: Iterable[Sequence[Any]], sheet: str) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(list(header))
    for row in rows:
        ws.append([_cell(v) for v in row])
    wb.save(target)


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], sheet: str) -> bytes:
    out = io.BytesIO()
    _xlsx_to(out, header, rows, sheet)
    return out.getvalue()


def xlsx_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]], sheet: str) -> Iterator[bytes]:
    """The workbook is written to a temporary file as the rows arrive, then sent a chunk at a time."""
    with tempfile.TemporaryFile(suffix=".xlsx") as f:
        _xlsx_to(f, header, rows, sheet)
        f.seek(0)
        while chunk := f.read(CHUNK):
            yield chunk
