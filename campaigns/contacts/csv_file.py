"""Reading a contacts CSV file into rows keyed by column name, with per-row problems by line number.

The file is read as a stream: rows are produced one at a time while the file is read in small chunks, so memory
stays the same for a file of 2 MB or 2 GB. The external ids seen so far (to report duplicates) are kept in a
private temporary SQLite database on disk, not in memory.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from _csv import Reader

REQUIRED_COLUMN = "external_id"
NOT_UTF8_REASON = "is not valid UTF-8 (save the file as UTF-8)"

# decode(errors="surrogateescape") turns every undecodable byte into one of these code points.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
# A UTF-16 byte order mark as surrogateescape decodes it.
_UTF16_BOMS = ("\udcff\udcfe", "\udcfe\udcff")
# How much of the file the delimiter detection reads at most looking for the end of the header line.
_MAX_HEADER_CHARS = 256 * 1024


@dataclass(frozen=True)
class CsvRow:
    line: int  # physical line (1-based) where the record starts; the header is line 1
    values: dict[str, str]  # lower-cased column name -> cell as written


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str  # completes the sentence "line N ...", e.g. "is not valid UTF-8 (...)"


class CsvFileError(ValueError):
    """The file as a whole cannot be imported."""


def read_contacts_csv(source: IO[bytes]) -> Iterator[CsvRow | RowProblem]:
    """Rows and row problems of a contacts CSV read from the binary stream `source`, in file order.

    Accepts UTF-8 with or without BOM, comma or semicolon delimited (detected from the header line).
    File-level problems raise CsvFileError before any row is produced. `source` is left open.
    """
    # surrogateescape instead of failing: a file with one Windows-1252 row still imports its good rows.
    # newline="": the csv module sees line breaks as written, including those inside quoted cells.
    text = io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        delimiter, head = _detect_delimiter(text)
        if head and head[0].startswith(_UTF16_BOMS):
            raise CsvFileError("the file is UTF-16 encoded; save it as CSV UTF-8")
        # strict: a stray or unclosed quote becomes a reported problem instead of silently merged cells.
        reader = csv.reader(itertools.chain(head, text), delimiter=delimiter, strict=True)
        header = _read_header(reader)
        yield from _rows(reader, header)
    finally:
        text.detach()  # a collected wrapper would close the caller's stream


def _detect_delimiter(lines: Iterator[str]) -> tuple[str, list[str]]:
    """ ";" when the header line has more semicolons than commas outside quotes, else ","; and the lines read."""
    counts = {",": 0, ";": 0}
    in_quotes = started = False
    head: list[str] = []
    read = 0
    for line in lines:
        head.append(line)
        read += len(line)
        for char in line:
            if char == '"':
                in_quotes = not in_quotes
                started = True
            elif in_quotes:
                continue
            elif char in "\r\n":
                if started:  # blank lines before the header do not end it
                    return _more_frequent(counts), head
            elif char in counts:
                counts[char] += 1
                started = True
            elif not char.isspace():
                started = True
        if read > _MAX_HEADER_CHARS:
            break  # an unclosed quote: the header's parse reports it
    return _more_frequent(counts), head


def _more_frequent(counts: dict[str, int]) -> str:
    return ";" if counts[";"] > counts[","] else ","


def _is_blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()


def _read_header(reader: Reader) -> list[str]:
    """The validated, lower-cased column names; blank lines before the header are skipped."""
    try:
        cells = next((row for row in reader if not _is_blank(row)), None)
    except csv.Error as exc:
        raise CsvFileError(f"the header line is not valid CSV ({exc})") from None
    if cells is None:
        raise CsvFileError(
            "the file is empty; its first line must name the columns, e.g. external_id,name,phone"
        )
    if any(_UNDECODABLE.search(cell) for cell in cells):
        raise CsvFileError(f"the header {NOT_UTF8_REASON}")
    header = [cell.strip().lower() for cell in cells]
    positions: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name:
            raise CsvFileError(f"column {position} of the header has no name")
        if name in positions:
            raise CsvFileError(
                f"the header has the column '{name}' twice (columns {positions[name]} and {position})"
            )
        positions[name] = position
    if REQUIRED_COLUMN not in positions:
        raise CsvFileError(
            f"the header has no {REQUIRED_COLUMN} column (found: {', '.join(header)}); "
            f"every contact needs an {REQUIRED_COLUMN}"
        )
    return header


def _rows(reader: Reader, header: list[str]) -> Iterator[CsvRow | RowProblem]:
    width = len(header)
    id_index = header.index(REQUIRED_COLUMN)
    previous_end = reader.line_num
    seen = _SeenIds()
    try:
        while True:
            # A record starts on the line after the previous one ended, even if it spans several lines.
            line = previous_end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                previous_end = reader.line_num
                yield RowProblem(line, _csv_error_reason(exc))
                continue
            previous_end = reader.line_num
            if _is_blank(cells):
                continue
            problem = _check_cells(cells, width)
            if problem:
                yield RowProblem(line, problem)
                continue
            external_id = cells[id_index].strip()
            if external_id:
                first_line = seen.first_line(external_id, line)
                if first_line != line:
                    yield RowProblem(
                        line, f"duplicate external_id '{external_id}' (first on line {first_line})"
                    )
                    continue
            yield CsvRow(line, dict(zip(header, cells, strict=True)))
    finally:
        seen.close()


def _check_cells(cells: list[str], width: int) -> str | None:
    """Why the row cannot be read, or None; pads short rows and drops empty trailing cells in place."""
    if any(_UNDECODABLE.search(cell) for cell in cells):
        return NOT_UTF8_REASON
    if len(cells) > width:
        # Spreadsheets often pad rows with trailing delimiters; only real extra values are an error.
        if any(cell.strip() for cell in cells[width:]):
            return f"has {len(cells)} values but the header has {width} columns"
        del cells[width:]
    elif len(cells) < width:
        cells.extend([""] * (width - len(cells)))
    return None


class _SeenIds:
    """The line each external id was first seen on, in a private temporary database on disk.

    SQLite deletes it when the connection closes and keeps only a small page cache in memory, so a file of
    millions of rows does not hold millions of ids in memory.
    """

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a private temporary database on disk
        self._db.execute("CREATE TABLE seen (external_id TEXT PRIMARY KEY, line INTEGER NOT NULL)")

    def first_line(self, external_id: str, line: int) -> int:
        """The line `external_id` was first seen on: `line` itself when it is new."""
        inserted = self._db.execute(
            "INSERT INTO seen VALUES (?, ?) ON CONFLICT DO NOTHING", (external_id, line)
        ).rowcount
        if inserted:
            return line
        first: int = self._db.execute(
            "SELECT line FROM seen WHERE external_id = ?", (external_id,)
        ).fetchone()[0]
        return first

    def close(self) -> None:
        self._db.close()


def _csv_error_reason(exc: csv.Error) -> str:
    if "unexpected end of data" in str(exc):
        return 'has a quote (") that is never closed, so the rest of the file could not be read'
    return f"is not valid CSV ({exc}); quote values that contain quotes, delimiters or line breaks"
