"""`import_contacts` streams: the file is read, validated and committed batch by batch, never held whole."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from campaigns.contacts.csv_file import RowProblem
from campaigns.contacts.importer import import_contacts
from storage.db import Database
from storage.tables import Contact


def stored(db: Database) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Contact)) or 0


def csv_of(rows: list[str]) -> io.BytesIO:
    return io.BytesIO(("external_id,phone,plan\n" + "".join(rows)).encode())


def good_rows(count: int) -> list[str]:
    return [f"c{i},+4915112{i:06d},pro\n" for i in range(count)]


def test_rows_are_committed_batch_by_batch_while_the_file_is_still_being_read(db: Database) -> None:
    source = csv_of(good_rows(5000))
    size = len(source.getvalue())
    seen: list[tuple[int, int, int]] = []  # (last line read, bytes read so far, contacts committed)

    report = import_contacts(
        source,
        db=db,
        batch_size=1000,
        on_progress=lambda line: seen.append((line, source.tell(), stored(db))),
    )

    assert report.created == 5000 and report.ok
    first_line, read_then, committed_then = seen[0]
    assert (first_line, committed_then) == (1001, 1000)
    # The first batch was written after reading about a fifth of the file (plus one read-ahead chunk).
    assert read_then < size / 2
    assert [committed for _, _, committed in seen] == [1000, 2000, 3000, 4000, 5000, 5000]


def test_a_bad_row_late_in_the_file_does_not_undo_earlier_batches(db: Database) -> None:
    rows = [*good_rows(2500), "c0,+4915112000000,again\n", 'c-late,"+4915112999999,pro\n']
    problems: list[RowProblem] = []

    report = import_contacts(csv_of(rows), db=db, batch_size=1000, on_problem=problems.append)

    assert (report.created, report.rejected) == (2500, 2)
    assert [(p.line, p.reason) for p in problems] == [
        (2502, "duplicate external_id 'c0' (first on line 2)"),
        (2503, 'has a quote (") that is never closed, so the rest of the file could not be read'),
    ]
    assert report.problems == []  # handed on, not collected
    assert stored(db) == 2500


def test_problems_are_handed_on_in_line_order_as_each_batch_is_done(db: Database) -> None:
    rows = good_rows(30)
    rows[1] = "c1,+1 555,pro\n"  # line 3: invalid at validation
    rows[3] = "c3,,pro\n"  # line 5: a new contact without a channel, found when the batch is written
    rows[13] = "c13,+1 555,pro\n"  # line 15
    reported: list[tuple[int, int]] = []  # (line, contacts committed when it was reported)

    import_contacts(
        csv_of(rows), db=db, batch_size=10, on_problem=lambda p: reported.append((p.line, stored(db)))
    )

    assert reported == [(3, 8), (5, 8), (15, 17)]


def test_a_file_of_bad_rows_is_reported_while_it_is_read(db: Database) -> None:
    source = csv_of([f"c{i},not a number,pro\n" for i in range(5000)])
    size = len(source.getvalue())
    read_at_first_problem: list[int] = []

    report = import_contacts(
        source, db=db, batch_size=100, on_problem=lambda _: read_at_first_problem.append(source.tell())
    )

    assert report.rejected == 5000 and stored(db) == 0
    assert read_at_first_problem[0] < size / 2
