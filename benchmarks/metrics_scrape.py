"""The cost of a /metrics scrape against the size of the database.

A scrape reads the database's totals with aggregate queries (`service.metrics.database`), whose cost grows with
the tables they count: the messages aggregate is one pass over `messages`. This prints, per size, the time of one
scrape's database part and its ratio to a baseline measured in the same run on the same rows: one
`SELECT channel, count(*) FROM messages GROUP BY channel`, a single grouped pass over the largest table. Targets: the ratio stays roughly flat as the
tables grow (the scrape costs a few passes, never a row read into Python), and a scrape stays well inside the
2-second statement timeout it runs under at the largest size.

SQLite in a temporary directory; PostgreSQL too when TEST_DATABASE_URL is set. `--quick` shrinks the sizes.
Run with `make bench`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from campaigns.clock import ManualClock
from service.metrics.database import DatabaseCollector
from storage.db import Database, upgrade
from storage.enums import (
    CampaignKind,
    Category,
    Channel,
    DeliveryStatus,
    Direction,
    InvitationState,
    MessagePurpose,
    SendState,
)
from storage.tables import Campaign, Contact, Invitation, Message, Response

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONTACTS = 1_000
CHUNK = 10_000
# A plausible mix of outbound outcomes, with a few provider codes.
OUTCOMES = [
    (SendState.SENT, DeliveryStatus.DELIVERED, None),
    (SendState.SENT, DeliveryStatus.DELIVERED, None),
    (SendState.SENT, DeliveryStatus.UNDELIVERED, "30003"),
    (SendState.REJECTED, None, "21211"),
    (SendState.FAILED, None, "20429"),
    (SendState.TWIML, None, None),
]
PURPOSES = [MessagePurpose.INVITATION, MessagePurpose.REMINDER, MessagePurpose.CONVERSATION]


def seed(db: Database, messages: int) -> None:
    """`messages` outbound messages, a tenth as many invitations and responses, over a thousand contacts."""
    with db.engine.begin() as connection:
        connection.execute(
            insert(Campaign), [{"name": "pulse", "kind": CampaignKind.RELATIONSHIP, "definition": {}}]
        )
        connection.execute(
            insert(Contact), [{"external_id": f"c{i}", "properties": {}} for i in range(CONTACTS)]
        )
    rows = itertools.count()
    for start in range(0, messages, CHUNK):
        size = min(CHUNK, messages - start)
        with db.engine.begin() as connection:
            connection.execute(insert(Message), [_message(next(rows)) for _ in range(size)])
            connection.execute(insert(Invitation), [_invitation(start + i) for i in range(size // 10)])
            connection.execute(insert(Response), [_response(start + i) for i in range(size // 10)])


def _message(n: int) -> dict[str, object]:
    send_state, delivery, code = OUTCOMES[n % len(OUTCOMES)]
    return {
        "direction": Direction.OUTBOUND if n % 4 else Direction.INBOUND,
        "channel": Channel.SMS if n % 3 else Channel.EMAIL,
        "purpose": PURPOSES[n % len(PURPOSES)] if n % 4 else MessagePurpose.REPLY,
        "address": "+15005550006",
        "send_state": send_state if n % 4 else None,
        "delivery_status": delivery if n % 4 else None,
        "error_code": code if n % 4 else None,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _invitation(n: int) -> dict[str, object]:
    return {
        "contact_id": 1 + n % CONTACTS,
        "campaign_id": 1,
        "state": InvitationState.RESPONDED if n % 2 else InvitationState.DELIVERED,
        "due_at": NOW - timedelta(days=1),
        "token": uuid.uuid4().hex,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _response(n: int) -> dict[str, object]:
    score = n % 11
    category = Category.DETRACTOR if score <= 6 else Category.PASSIVE if score <= 8 else Category.PROMOTER
    return {
        "channel": Channel.SMS,
        "score": score,
        "category": category,
        "contact_snapshot": {},
        "answered_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }


def best_of(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(label: str, url: str, sizes: list[int]) -> None:
    for size in sizes:
        db = Database.connect(url)
        try:
            upgrade(db.engine)
            seed(db, size)
            measure_one(label, db, size)
        finally:
            db.dispose()
            reset(url)


def measure_one(label: str, db: Database, size: int) -> None:
    collector = DatabaseCollector(db, ManualClock(NOW))
    families = list(collector.collect())
    if families[0].samples[0].value != 1:
        print(f"{label}: {size:>9,} messages: the scrape timed out (nps_database_up 0)")
        return

    def baseline() -> None:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT channel, count(*) FROM messages GROUP BY channel")).all()

    scan = best_of(3, baseline)
    scrape = best_of(3, lambda: list(collector.collect()))
    print(
        f"{label}: {size:>9,} messages: scrape {scrape * 1000:7.1f} ms, one grouped pass "
        f"{scan * 1000:6.1f} ms, ratio {scrape / scan:5.1f}"
    )


def reset(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database or "").unlink(missing_ok=True)
        return
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def postgres_url(base: str) -> tuple[str, Callable[[], None]]:
    """A database of its own on the TEST_DATABASE_URL server, dropped afterwards."""
    name = f"bench_metrics_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(base).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    sizes = [2_000, 20_000] if args.quick else [20_000, 200_000, 1_000_000]
    with tempfile.TemporaryDirectory() as folder:
        measure("SQLite", f"sqlite:///{folder}/bench.db", sizes)
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        url, drop = postgres_url(base)
        try:
            measure("PostgreSQL", url, sizes)
        finally:
            drop()


if __name__ == "__main__":
    main()
