"""Planning a relationship campaign over a large base: the planner against a hand-written INSERT ... SELECT.

1. Time: 1,000,000 contacts (`--quick`: 50,000) with an audience filter (plan and region), opt-outs (3% of all
   contacts, 1% more by phone), fatigue (5% surveyed elsewhere 30 days ago) and everybody due. Each round plans
   the campaign once with `plan_recurring` (set-based, with the skips recorded) and once with one hand-written
   `INSERT ... SELECT` that does the same filtering and nothing else, alternated, on a fresh outbox each time;
   both must plan the same number. Target: the planner within 3x of the baseline (median of the rounds).
2. Memory: the planner alone in a fresh process at two sizes (a tenth of the size and the size); the peak RSS
   growth should stay flat (ratio < 1.5).

SQLite in a temporary directory; PostgreSQL too for the time when TEST_DATABASE_URL is set. Prints a table and
one `BENCH {json}` line per figure. Run with `.venv/bin/python benchmarks/planning.py [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, delete, insert, select, text
from sqlalchemy.engine import make_url

from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.store import apply_definitions
from campaigns.planning.planner import PlanningRules, plan_recurring
from storage.db import Database, upgrade
from storage.enums import Channel, ConsentStatus
from storage.tables import Campaign, Consent, Contact, Invitation, Skip

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
RULES = PlanningRules(min_days_between_surveys=90)
TARGET_RATIO, TARGET_MEMORY_RATIO = 3.0, 1.5
CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 90
    channels: [sms]
    audience: {plan: [pro, enterprise], region: EU}
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""

# The baseline: what the planner does for this campaign, written by hand as one statement (SQLite and
# PostgreSQL both read it). Every contact is due: the campaign started more than one interval ago. It filters as
# the planner must: test addresses are in no audience, a contact is due when this campaign's last survey is an
# interval old (none here) and the customer started at least `first_after_days` (0) ago, and a survey held for
# review counts as sent when it went to review (fatigue).
BASELINE = """
INSERT INTO invitations (campaign_id, contact_id, state, due_at, token, dedupe_key, attempts, created_at, updated_at)
SELECT :campaign, c.id, 'planned', :now, {token}, :prefix || CAST(c.id AS VARCHAR) || :suffix, 0, :now, :now
FROM contacts c
WHERE {plan} IN ('pro', 'enterprise') AND {region} = 'eu' AND NOT c.test
  AND COALESCE(c.customer_since, c.created_at) <= :now
  AND NOT EXISTS (SELECT 1 FROM invitations h WHERE h.campaign_id = :campaign AND h.contact_id = c.id
                  AND h.due_at > :cutoff)
  AND c.opted_out_at IS NULL
  AND c.phone IS NOT NULL AND c.phone != ''
  AND NOT EXISTS (SELECT 1 FROM consents k WHERE k.channel = 'sms' AND k.address = c.phone AND k.status = 'opted_out')
  AND (c.last_surveyed_at IS NULL OR c.last_surveyed_at <= :cutoff)
  AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.contact_id = c.id
                  AND (i.sent_at > :cutoff OR (i.sent_at IS NULL AND i.state = 'review' AND i.updated_at > :cutoff)))
  AND NOT EXISTS (SELECT 1 FROM invitations p WHERE p.contact_id = c.id AND p.state IN ('planned', 'claimed'))
"""


def baseline_sql(dialect: str) -> str:
    if dialect == "postgresql":
        return BASELINE.format(
            token="md5(random()::text || c.id::text)",
            plan="lower(trim(c.properties ->> 'plan'))",
            region="lower(trim(c.properties ->> 'region'))",
        )
    return BASELINE.format(
        token="lower(hex(randomblob(16)))",
        plan="lower(trim(json_extract(c.properties, '$.plan')))",
        region="lower(trim(json_extract(c.properties, '$.region')))",
    )


def migrated(url: str) -> Database:
    db = Database.connect(url)
    upgrade(db.engine)
    return db


def fill(db: Database, contacts: int) -> None:
    """The base, 20,000 rows a statement, and the campaign (applied long enough ago that everybody is due)."""
    plans, regions = ("pro", "free", "Enterprise", "pro"), ("EU", "US", "eu ")
    for start in range(0, contacts, 20_000):
        rows = []
        consents = []
        for i in range(start, min(contacts, start + 20_000)):
            phone = f"+49151{20_000_000 + i}"
            rows.append(
                {
                    "external_id": f"c{i}",
                    "phone": phone,
                    "timezone": ("UTC", "Europe/Berlin", None)[i % 3],
                    "properties": {"plan": plans[i % 4], "region": regions[i % 3], "seats": str(i % 50)},
                    "opted_out_at": NOW - timedelta(days=5) if i % 33 == 0 else None,
                    "last_surveyed_at": NOW - timedelta(days=30) if i % 20 == 7 else None,
                    "created_at": NOW - timedelta(days=400),
                    "updated_at": NOW - timedelta(days=400),
                }
            )
            if i % 100 == 1:
                consents.append(
                    {
                        "channel": Channel.SMS,
                        "address": phone,
                        "status": ConsentStatus.OPTED_OUT,
                        "source": "bench",
                    }
                )
        with db.transaction() as session:
            session.execute(insert(Contact), rows)
            if consents:
                session.execute(insert(Consent), consents)
    with db.transaction() as session:
        apply_definitions(
            parse_campaign_file(CAMPAIGN).campaigns, session=session, now=NOW - timedelta(days=100)
        )
    # Statistics for the freshly written tables, as a database that grew over time has them: without them
    # PostgreSQL plans the NOT EXISTS probes of both sides as if the tables were empty.
    with db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()


def reset(db: Database) -> None:
    """An empty outbox for the next run, in the same state whichever side ran before.

    On PostgreSQL the deleted rows stay as dead tuples until a VACUUM, and the statistics still describe the
    million rows just written: the next run then plans its NOT EXISTS probes and index upkeep against a bloated
    table with wrong row counts (the baseline stalled that way). VACUUM ANALYZE cannot run in a transaction,
    hence the autocommit connection.
    """
    with db.transaction() as session:
        session.execute(delete(Invitation))
        session.execute(delete(Skip))
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE invitations, skips, campaigns"))


def ours(db: Database) -> int:
    return plan_recurring(db, now=NOW, rules=RULES, force=True).planned


def baseline(db: Database) -> int:
    with db.transaction() as session:
        campaign = session.scalars(select(Campaign)).one()
        if db.engine.dialect.name == "postgresql":
            # Without this PostgreSQL runs the NOT EXISTS probes of freshly filled tables as nested loops that
            # rescan the range for every contact: the baseline itself went quadratic (minutes at 1,000,000
            # contacts) and the ratio measured nothing. Hash anti-joins are what a hand-tuned statement gets.
            session.execute(text("SET LOCAL enable_nestloop = off"))
        result = session.execute(
            text(baseline_sql(db.engine.dialect.name)),
            {
                "campaign": campaign.id,
                "now": _bind(db, NOW),
                "cutoff": _bind(db, NOW - timedelta(days=90)),
                "prefix": f"{campaign.id}:",
                "suffix": ":r1",
            },
        )
        return int(result.rowcount)  # type: ignore[attr-defined]  # the planner counts what it wrote, too


def _bind(db: Database, moment: datetime) -> object:
    # The planner stores SQLite datetimes as naive UTC text (storage.types.UTCDateTime); the baseline matches.
    return (
        moment.replace(tzinfo=None).isoformat(sep=" ") + ".000000"
        if db.engine.dialect.name == "sqlite"
        else moment
    )


def timed(run: Callable[[Database], int], db: Database) -> tuple[float, int]:
    started = time.perf_counter()
    planned = run(db)
    elapsed = time.perf_counter() - started
    reset(db)
    return elapsed, planned


def compare(db: Database, rounds: int) -> tuple[float, float, int]:
    """Alternated rounds; the median seconds of each and the number planned (the same for both)."""
    base_times, our_times = [], []
    planned = set()
    for index in range(rounds):
        order = (
            (("baseline", baseline), ("ours", ours))
            if index % 2 == 0
            else (("ours", ours), ("baseline", baseline))
        )
        for name, run in order:
            seconds, count = timed(run, db)
            (base_times if name == "baseline" else our_times).append(seconds)
            planned.add(count)
    assert len(planned) == 1, f"the planner and the baseline planned different numbers: {planned}"
    return statistics.median(base_times), statistics.median(our_times), planned.pop()


def with_postgres(
    server_url: str, run: Callable[[Database], tuple[float, float, int]]
) -> tuple[float, float, int]:
    name = f"nps_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    db = migrated(make_url(server_url).set(database=name).render_as_string(hide_password=False))
    try:
        return run(db)
    finally:
        db.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- memory --------------------------------------------------------------------------------------------------


def peak_rss_kib() -> int:
    """The peak resident set of this process (VmHWM), in KiB (not ru_maxrss, which a forked child inherits)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_child(url: str) -> None:
    db = Database.connect(url)
    before = peak_rss_kib()
    planned = ours(db)
    print(json.dumps({"growth_kib": peak_rss_kib() - before, "planned": planned}))


def memory_growth(directory: Path, contacts: int) -> float:
    url = f"sqlite:///{directory / f'memory-{contacts}.db'}"
    db = migrated(url)
    fill(db, contacts)
    db.dispose()
    result = subprocess.run(
        [sys.executable, __file__, "--memory-child", url], capture_output=True, text=True, check=True
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1])["growth_kib"])


# --- report --------------------------------------------------------------------------------------------------


def figure(name: str, baseline_value: float, ours_value: float, ratio: float, target: str, ok: bool) -> None:
    print(
        f"{name}: baseline {baseline_value:.2f}, ours {ours_value:.2f}, ratio {ratio:.2f} (target {target}) {'PASS' if ok else 'FAIL'}"
    )
    line = {
        "figure": name,
        "baseline": round(baseline_value, 3),
        "ours": round(ours_value, 3),
        "ratio": round(ratio, 3),
        "target": target,
        "pass": ok,
    }
    print("BENCH " + json.dumps(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="50,000 contacts instead of 1,000,000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, help="contacts (overrides --quick)")
    parser.add_argument(
        "--engine",
        choices=["both", "sqlite", "postgresql"],
        default="both",
        help="where to time (PostgreSQL needs TEST_DATABASE_URL)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory figure")
    parser.add_argument("--memory-child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    import os

    size = args.size or (50_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if args.engine != "postgresql":
            db = migrated(f"sqlite:///{directory / 'time.db'}")
            fill(db, size)
            base, our, planned = compare(db, args.rounds)
            db.dispose()
            print(f"SQLite, {size:,} contacts, {planned:,} planned a round")
            figure(
                f"planning {size:,} contacts, SQLite (s)",
                base,
                our,
                our / base,
                f"<= {TARGET_RATIO}x",
                our / base <= TARGET_RATIO,
            )
        server = os.environ.get("TEST_DATABASE_URL")
        if server and args.engine != "sqlite":

            def on_postgres(pg: Database) -> tuple[float, float, int]:
                fill(pg, size)
                return compare(pg, args.rounds)

            base, our, planned = with_postgres(server, on_postgres)
            print(f"PostgreSQL, {size:,} contacts, {planned:,} planned a round")
            figure(
                f"planning {size:,} contacts, PostgreSQL (s)",
                base,
                our,
                our / base,
                f"<= {TARGET_RATIO}x",
                our / base <= TARGET_RATIO,
            )
        if args.no_memory:
            return
        small, large = size // 10, size
        growth_small, growth_large = memory_growth(directory, small), memory_growth(directory, large)
        ratio = growth_large / max(growth_small, 1.0)
        figure(
            f"planner peak RSS growth (KiB), {small:,} vs {large:,} contacts",
            growth_small,
            growth_large,
            ratio,
            f"< {TARGET_MEMORY_RATIO}",
            ratio < TARGET_MEMORY_RATIO,
        )


if __name__ == "__main__":
    main()
