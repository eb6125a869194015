"""Reading a contacts CSV file into rows keyed by column name, with per-row problems by line number.

Rows are produced one at a time; besides the decoded text, only the external ids seen so far are kept.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _csv import Reader

REQUIRED_COLUMN = "external_id"
NOT_UTF8_REASON = "is not valid UTF-8 (save the file as UTF-8)"

# decode(errors="surrogateescape") turns every undecodable byte into one of these code points.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


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


def read_contacts_csv(data: bytes) -> Iterator[CsvRow | RowProblem]:
    """Rows and row problems of a contacts CSV, in file order.

    Accepts UTF-8 with or without BOM, comma or semicolon delimited (detected from the header line).
    File-level problems raise CsvFileError at once, before any row is produced.
    """
    text = _decode(data)
    # strict: a stray or unclosed quote becomes a reported problem instead of silently merged cells.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_detect_delimiter(text), strict=True)
    header = _read_header(reader)
    # Most files are clean UTF-8: one scan of the whole text spares a check per row.
    check_encoding = _UNDECODABLE.search(text) is not None
    return _rows(reader, header, check_encoding)


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CsvFileError("the file is UTF-16 encoded; save it as CSV UTF-8")
    # surrogateescape instead of failing: a file with one Windows-1252 row still imports its good rows.
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def _detect_delimiter(text: str) -> str:
    """ ";" when the header line has more semicolons than commas outside quotes, else ","."""
    commas = semicolons = 0
    in_quotes = started = False
    for char in text:
        if char == '"':
            in_quotes = not in_quotes
            started = True
        elif in_quotes:
            continue
        elif char in "\r\n":
            if started:  # blank lines before the header do not end it
                break
        elif char == ",":
            commas += 1
            started = True
        elif char == ";":
            semicolons += 1
            started = True
        elif not char.isspace():
            started = True
    return ";" if semicolons > commas else ","


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


def _rows(reader: Reader, header: list[str], check_encoding: bool) -> Iterator[CsvRow | RowProblem]:
    width = len(header)
    first_line_of: dict[str, int] = {}  # external_id -> line of its first row
    id_index = header.index(REQUIRED_COLUMN)
    previous_end = reader.line_num
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
        if check_encoding and any(_UNDECODABLE.search(cell) for cell in cells):
            yield RowProblem(line, NOT_UTF8_REASON)
            continue
        if len(cells) > width:
            # Spreadsheets often pad rows with trailing delimiters; only real extra values are an error.
            if any(cell.strip() for cell in cells[width:]):
                yield RowProblem(line, f"has {len(cells)} values but the header has {width} columns")
                continue
            del cells[width:]
        elif len(cells) < width:
            cells.extend([""] * (width - len(cells)))

        external_id = cells[id_index].strip()
        if external_id:
            first_line = first_line_of.setdefault(external_id, line)
            if first_line != line:
                yield RowProblem(line, f"duplicate external_id '{external_id}' (first on line {first_line})")
                continue
        yield CsvRow(line, dict(zip(header, cells, strict=True)))


def _csv_error_reason(exc: csv.Error) -> str:
    if "unexpected end of data" in str(exc):
        return 'has a quote (") that is never closed, so the rest of the file could not be read'
    return f"is not valid CSV ({exc}); quote values that contain quotes, delimiters or line breaks"
