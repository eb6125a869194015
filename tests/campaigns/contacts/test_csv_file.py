"""Reading a contacts CSV from a stream: encodings, delimiters and line numbers as written in the file."""

from __future__ import annotations

import io

import pytest

from campaigns.contacts.csv_file import CsvFileError, CsvRow, RowProblem, read_contacts_csv


def read(data: bytes) -> list[CsvRow | RowProblem]:
    return list(read_contacts_csv(io.BytesIO(data)))


def test_characters_split_across_read_chunks_are_decoded_whole() -> None:
    # Rows of varying length with a two-byte "ë": whatever the read size, some "ë" straddle a chunk boundary.
    rows = [f"c{i},{'x' * (i % 7)}Zo\u00eb\n" for i in range(20_000)]
    items = read(("external_id,name\n" + "".join(rows)).encode())
    assert len(items) == 20_000
    assert all(isinstance(item, CsvRow) and item.values["name"].endswith("Zoë") for item in items)


def test_a_bom_is_dropped_and_semicolons_are_detected() -> None:
    [row] = read("\ufeffexternal_id;name\nc1;Ana, Lima\n".encode())
    assert row == CsvRow(2, {"external_id": "c1", "name": "Ana, Lima"})


def test_utf16_is_refused_as_a_whole() -> None:
    with pytest.raises(CsvFileError, match="UTF-16"):
        read("external_id\nc1\n".encode("utf-16"))


def test_line_numbers_count_line_breaks_inside_quoted_cells() -> None:
    items = read(b'external_id,note\nc1,"two\nlines"\nc2,"bad"x\nc3,ok\n')
    assert [(item.line, type(item).__name__) for item in items] == [
        (2, "CsvRow"),
        (4, "RowProblem"),
        (5, "CsvRow"),
    ]


def test_an_undecodable_row_is_a_problem_and_the_others_import() -> None:
    items = read(b"external_id,name\nc1,Ana\nc2,Andr\xe9\nc3,Cy\n")
    assert [type(item).__name__ for item in items] == ["CsvRow", "RowProblem", "CsvRow"]


def test_the_callers_stream_is_left_open() -> None:
    source = io.BytesIO(b"external_id\nc1\n")
    list(read_contacts_csv(source))
    assert not source.closed
