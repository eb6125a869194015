"""`nps score` with a property filter and `nps trend` by week over 1,000,000 responses, each against the
hand-written SQL that gives the same answer, measured alternately in the same run (target: within 2x).

SQLite always; PostgreSQL too when TEST_DATABASE_URL is set (a schema of its own, dropped afterwards).
The hand-written score reads what `nps score` shows: the category counts of this year and of the year before
for plan=pro, and the invitations sent and delivered in the year. The hand-written trend is one GROUP BY over a
week number computed in SQL. `--quick`: 100,000 responses.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, insert, text

from benchmarks.nps_queries import bench, best_of
from campaigns.scores import queries
from campaigns.scores.filters import Filters
from campaigns.scores.nps import categorize
from campaigns.scores.periods import Period
from storage.db import Database, upgrade
from storage.enums import Channel
from storage.tables import Response

NOW = datetime(2026, 11, 30, tzinfo=UTC)
YEAR = Period(NOW - timedelta(days=364), NOW, tz=UTC)
PLANS = ("basic", "pro", "enterprise")
CHUNK = 20_000
RUNS = 3


def seed(db: Database, count: int) -> None:
    rng = random.Random(1)
    start = NOW - timedelta(days=728)  # two years: the score also reads the year before
    with db.transaction() as session:
        for first in range(0, count, CHUNK):
            rows = []
            for _ in range(min(CHUNK, count - first)):
                score = rng.choice((0, 3, 6, 7, 8, 9, 9, 10, 10, 10))
                rows.append(
                    {
                        "channel": Channel.EMAIL,
                        "score": score,
                        "category": categorize(score),
                        "contact_snapshot": {"plan": rng.choice(PLANS), "region": rng.choice(("EU", "NA"))},
                        "answered_at": start + timedelta(seconds=rng.uniform(0, 728 * 86400)),
                        "late": False,
                    }
                )
            session.execute(insert(Response), rows)


def hand_score(db: Database, dialect: str) -> object:
    plan = "json_extract(contact_snapshot, '$.plan')" if dialect == "sqlite" else "contact_snapshot->>'plan'"
    counts = text(
        f"SELECT category, count(*) FROM responses WHERE answered_at >= :start AND answered_at < :end "
        f"AND {plan} = 'pro' GROUP BY category"
    )
    sent = text(
        "SELECT count(*), count(delivered_at) FROM invitations WHERE sent_at >= :start AND sent_at < :end"
    )
    previous = YEAR.previous()
    with db.engine.connect() as connection:
        return (
            connection.execute(counts, {"start": YEAR.start, "end": YEAR.end}).all(),
            connection.execute(counts, {"start": previous.start, "end": previous.end}).all(),
            connection.execute(sent, {"start": YEAR.start, "end": YEAR.end}).all(),
        )


def hand_trend(db: Database, dialect: str) -> object:
    if dialect == "sqlite":
        week = "CAST((julianday(answered_at) - julianday(:start)) / 7 AS INTEGER)"
    else:
        week = "floor(extract(epoch FROM answered_at - :start) / 604800)"
    query = text(
        f"SELECT {week} AS week, category, count(*) FROM responses "
        "WHERE answered_at >= :start AND answered_at < :end GROUP BY week, category"
    )
    with db.engine.connect() as connection:
        return connection.execute(query, {"start": YEAR.start, "end": YEAR.end}).all()


def ours_score(db: Database) -> object:
    with db.transaction() as session:
        return queries.score(session=session, period=YEAR, filters=Filters(properties=(("plan", "pro"),)))


def ours_trend(db: Database) -> object:
    with db.transaction() as session:
        return queries.trend(session=session, period=YEAR, granularity="weekly", tz=UTC)


def alternate(ours: Callable[[], object], baseline: Callable[[], object]) -> tuple[float, float]:
    """Best of RUNS for each, the two taking turns so that the machine's load falls on both alike."""
    ours_best, base_best = float("inf"), float("inf")
    for _ in range(RUNS):
        ours_best = min(ours_best, best_of(1, ours))
        base_best = min(base_best, best_of(1, baseline))
    return ours_best, base_best


def measure(db: Database, label: str, dialect: str, count: int, rerun: str) -> None:
    upgrade(db.engine)
    seed(db, count)
    if dialect == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text("ANALYZE responses"))
    for name, ours, hand in (
        ("score plan=pro, a year", lambda: ours_score(db), lambda: hand_score(db, dialect)),
        ("trend weekly, a year", lambda: ours_trend(db), lambda: hand_trend(db, dialect)),
    ):
        mine, base = alternate(ours, hand)
        ratio = mine / base
        bench(
            f"{name} over {count:,} responses, {label} (baseline: hand-written SQL)",
            base * 1000,
            mine * 1000,
            "ms",
            ratio,
            "<= 2x the hand-written SQL",
            ratio <= 2,
            rerun,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 responses instead of 1,000,000")
    count = 100_000 if parser.parse_args().quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.connect(f"sqlite:///{Path(tmp) / 'nps.db'}")
        try:
            measure(db, "SQLite", "sqlite", count, ".venv/bin/python benchmarks/insight_queries.py")
        finally:
            db.dispose()
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        schema = f"bench_insight_{os.getpid()}"
        admin = create_engine(url)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        db: Database | None = None
        try:
            db = Database.connect(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
            rerun = "TEST_DATABASE_URL=... .venv/bin/python benchmarks/insight_queries.py"
            measure(db, "PostgreSQL", "postgresql", count, rerun)
        finally:
            if db is not None:
                db.dispose()
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
