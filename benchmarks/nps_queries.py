"""`/nps` query latency: score, trend, compare and comments over 100,000 responses in the period, on SQLite.

The period (last 30 days) holds 100,000 responses and 100,000 invitations, the 30 days before as many again
(the score query reads both). Each query is timed as the best of a few runs and printed against the 1 s
budget; the score is also compared with a naive version (load every response of both periods as ORM objects
and count in Python) measured in the same run. Run with `make bench`.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select

from bot.query.grammar import parse
from campaigns.scores import queries
from campaigns.scores.filters import Filters
from campaigns.scores.nps import Tally, categorize
from storage.db import Database, upgrade
from storage.enums import (
    CampaignKind,
    Category,
    Channel,
    InvitationState,
)
from storage.tables import Campaign, Contact, Invitation, Response

PER_PERIOD = 100_000
CONTACTS = 5_000
NOW = datetime(2026, 5, 14, 15, 30, tzinfo=UTC)
BUDGET_SECONDS = 1.0
PLANS, REGIONS = ["free", "pro", "Enterprise"], ["EU", "US", "APAC", "North America"]
COMMENTS = ["too slow", "great support", "price is high", "love it", None, None, None]


def seed(db: Database) -> None:
    rng = random.Random(7)
    with db.transaction() as session:
        session.execute(
            insert(Campaign),
            [{"name": n, "kind": CampaignKind.RELATIONSHIP} for n in ("pulse", "post-delivery")],
        )
        session.execute(
            insert(Contact),
            [
                {
                    "external_id": f"c{i}",
                    "name": f"Person {i}",
                    "properties": {"plan": rng.choice(PLANS), "region": rng.choice(REGIONS)},
                }
                for i in range(CONTACTS)
            ],
        )
    invitations, responses = [], []
    # Oldest first, as a live system writes them: the table's pages follow the answered_at index.
    moments = sorted(NOW - timedelta(seconds=rng.randrange(60 * 86400)) for _ in range(2 * PER_PERIOD))
    for i, at in enumerate(moments):
        contact, campaign = rng.randrange(1, CONTACTS + 1), rng.choice((1, 2))
        channel = rng.choice((Channel.SMS, Channel.EMAIL))
        score = rng.choice((0, 3, 5, 6, 7, 8, 8, 9, 9, 10, 10, 10))
        invitations.append(
            {
                "contact_id": contact,
                "campaign_id": campaign,
                "channel": channel,
                "state": InvitationState.RESPONDED,
                "due_at": at,
                "token": f"t{i}",
                "sent_at": at,
                "delivered_at": at,
                "responded_at": at,
            }
        )
        responses.append(
            {
                "contact_id": contact,
                "campaign_id": campaign,
                "channel": channel,
                "score": score,
                "category": categorize(score).value,
                "comment": rng.choice(COMMENTS),
                "contact_snapshot": {"plan": rng.choice(PLANS), "region": rng.choice(REGIONS)},
                "answered_at": at,
            }
        )
    with db.transaction() as session:
        for chunk in range(0, len(responses), 20_000):
            session.execute(insert(Invitation), invitations[chunk : chunk + 20_000])
            session.execute(insert(Response), responses[chunk : chunk + 20_000])


def bench(
    figure: str,
    baseline: float | None,
    ours: float,
    unit: str,
    ratio: float | None,
    target: str,
    passed: bool,
    rerun: str,
) -> None:
    """One figure as the BENCH line benchmarks/summary.py collects for benchmarks/results/LATEST.md."""
    values = {"figure": figure, "baseline": baseline, "ours": ours, "unit": unit, "ratio": ratio}
    rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}
    print("BENCH " + json.dumps({**rounded, "target": target, "pass": bool(passed), "rerun": rerun}))


def best_of(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.connect(f"sqlite:///{Path(tmp) / 'nps.db'}")
        upgrade(db.engine)
        started = time.perf_counter()
        seed(db)
        print(f"seeded {2 * PER_PERIOD:,} responses and invitations in {time.perf_counter() - started:.1f} s")
        period = parse("last 30d", NOW, UTC).period  # type: ignore[union-attr]

        def run(label: str, query: Callable[..., object], **kwargs: object) -> float:
            def once() -> object:
                with db.transaction() as session:
                    return query(session=session, **kwargs)

            elapsed = best_of(3, once)
            print(f"{label:<44} {elapsed * 1000:8.0f} ms   budget ratio {elapsed / BUDGET_SECONDS:.2f}")
            bench(
                f"query {label}, {2 * PER_PERIOD:,} responses, SQLite",
                None,
                elapsed * 1000,
                "ms",
                None,
                f"< {BUDGET_SECONDS * 1000:.0f} ms",
                elapsed < BUDGET_SECONDS,
                ".venv/bin/python benchmarks/nps_queries.py",
            )
            return elapsed

        def naive_score() -> Tally:
            with db.transaction() as session:
                rows = session.scalars(
                    select(Response).where(
                        Response.answered_at >= period.previous().start, Response.answered_at < period.end
                    )
                ).all()
                current = [r.score for r in rows if r.answered_at >= period.start]
                return Tally.from_scores(current)

        with db.transaction() as session:
            report = queries.score(session=session, period=period)
        assert report.responses > 0.9 * PER_PERIOD, report.responses
        ours = run("score (with previous period)", queries.score, period=period)
        run(
            "score campaign:pulse channel:sms",
            queries.score,
            period=period,
            filters=Filters("pulse", Channel.SMS),
        )
        run(
            "score plan=enterprise region=EU",
            queries.score,
            period=period,
            filters=Filters(properties=(("plan", "enterprise"), ("region", "eu"))),
        )
        run("trend weekly, last 12 weeks", queries.trend, period=parse("trend", NOW, UTC).period)  # type: ignore[union-attr]
        run("compare region", queries.compare, property="region", period=period)
        run(
            "comments detractors 'slow' page 2",
            queries.comments,
            category=Category.DETRACTOR,
            keyword="slow",
            period=period,
            page=2,
        )
        naive = best_of(1, naive_score)
        print(
            f"naive score (ORM rows, counted in Python): {naive * 1000:.0f} ms; speed-up ratio {naive / ours:.1f}x"
        )
        print(
            f"score of {report.responses:,} responses: budget ratio {ours / BUDGET_SECONDS:.2f} (target < 1)"
        )
        bench(
            f"score of {report.responses:,} responses, SQLite (baseline: ORM rows counted in Python)",
            naive * 1000,
            ours * 1000,
            "ms",
            ours / naive,
            f"< {BUDGET_SECONDS * 1000:.0f} ms",
            ours < BUDGET_SECONDS,
            ".venv/bin/python benchmarks/nps_queries.py",
        )
        db.dispose()


if __name__ == "__main__":
    main()
