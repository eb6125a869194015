"""Property filters cost one read of the responses per period: no DISTINCT read of the values before it.

The values are grouped in the one query and matched in Python, the way campaign audiences compare them
(stripped, `casefold`), so the answers are the same on SQLite and PostgreSQL, accents included."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from campaigns.scores import queries
from campaigns.scores.filters import Filters
from campaigns.scores.nps import Tally
from campaigns.scores.periods import Period
from storage.db import Database
from tests.fixtures.seeding import NOW, Seeder

LAST_30 = Period(NOW - timedelta(days=30), NOW, tz=UTC)


@contextmanager
def reads_of_responses(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM responses" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)


def test_score_with_a_property_filter_reads_the_responses_once_for_both_periods(
    db: Database, seed: Seeder
) -> None:
    seed.mix(2, 1, 0, snapshot={"plan": "Pro "})
    seed.mix(0, 0, 3, snapshot={"plan": "free"})
    seed.mix(0, 0, 1, at=NOW - timedelta(days=45), snapshot={"plan": "pro"})  # the 30 days before
    seed.mix(1, 0, 0, at=NOW - timedelta(days=61), snapshot={"plan": "pro"})  # before those
    with reads_of_responses(db) as statements, db.transaction() as session:
        report = queries.score(
            session=session, period=LAST_30, filters=Filters(properties=(("plan", "pro"),))
        )
    assert report.tally == Tally(2, 1, 0)
    assert report.previous is not None and report.previous.tally == Tally(0, 0, 1)
    # PostgreSQL reads this period and the one before side by side (one scan); SQLite one index range each.
    assert len(statements) == (2 if db.engine.dialect.name == "sqlite" else 1), statements
    assert not any("DISTINCT" in statement for statement in statements)


def test_trend_with_a_property_filter_reads_the_responses_once(db: Database, seed: Seeder) -> None:
    seed.mix(1, 0, 1, at=NOW - timedelta(days=3), snapshot={"région": "Île-de-France"})
    seed.mix(0, 0, 5, at=NOW - timedelta(days=3), snapshot={"région": "Bretagne"})
    with reads_of_responses(db) as statements, db.transaction() as session:
        points = queries.trend(
            session=session, period=LAST_30, filters=Filters(properties=(("région", "île-de-france"),))
        )
    assert sum((p.tally for p in points), Tally()) == Tally(1, 0, 1)
    assert len(statements) == 1, statements


def test_values_that_fold_alike_match_however_they_are_stored(db: Database, seed: Seeder) -> None:
    """casefold, not lower: "STRASSE" and "Straße" are one value; a value that is a JSON number matches its
    text; a missing property never matches."""
    at = datetime.now(UTC) - timedelta(days=1)
    seed.mix(1, 0, 0, at=at, snapshot={"street": "Straße", "seats": 5})
    seed.mix(0, 1, 0, at=at, snapshot={"street": "STRASSE", "seats": "5"})
    seed.mix(0, 0, 1, at=at, snapshot={})
    period = Period(at - timedelta(days=1), at + timedelta(days=1), tz=UTC)
    with db.transaction() as session:
        street = queries.score(
            session=session, period=period, filters=Filters(properties=(("street", "strasse"),))
        )
        seats = queries.score(session=session, period=period, filters=Filters(properties=(("seats", "5"),)))
    assert street.tally == Tally(1, 1, 0) and seats.tally == Tally(1, 1, 0)
