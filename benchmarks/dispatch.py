"""Dispatch throughput and memory: the outbox dispatcher against the fake Twilio, and peak memory over sizes.

1. Throughput: 2,000 invitations through the Dispatcher (64 concurrent sends) while the fake Twilio, in a process
   of its own like the real provider, answers every send after 100 ms; against a naive sender calling
   TwilioSms.send one message at a time in the same run. Targets: >= 300 msg/s and >= 30x the naive sender.
2. Memory: planner + dispatcher over 10,000 and 200,000 invitations, each size in a fresh process; the peak RSS
   growth should stay flat (ratio < 1.5). Sends go to an in-memory transport here: at zero latency the fake
   only adds HTTP time, and it keeps every request it sees, which would grow with N in its own right.

SQLite in a temporary directory; PostgreSQL too for the throughput when TEST_DATABASE_URL is set. `--quick`
shrinks every size. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from campaigns.channels.base import Outgoing, Transport
from campaigns.channels.sms import TwilioConfig, TwilioSms
from campaigns.clock import ManualClock
from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.store import apply_definitions
from campaigns.dispatch.dispatcher import DispatchConfig, Dispatcher
from campaigns.planning.planner import PlanningRules, plan_recurring
from storage.db import Database, upgrade
from storage.enums import Channel, InvitationState
from storage.tables import Contact, Invitation
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LATENCY = 0.1
CONFIG = DispatchConfig(batch_size=256, concurrency=64, rate_per_second=100_000)
TARGET_RATE, TARGET_SPEEDUP, TARGET_MEMORY_RATIO = 300.0, 30.0, 1.5  # msg/s, x naive, 200k / 10k
CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
    messages:
      en: {sms: "Hi {{ first_name }}, how likely are you to recommend {{ company }}? {{ survey_url }}"}
"""


class MemorySms:
    """Accepts every send at once and remembers nothing: the dispatcher's own memory is what is measured."""

    channel = Channel.SMS
    name = "memory"

    def send(self, message: Outgoing) -> str:
        return "SM" + uuid.uuid4().hex

    def find_sent(
        self, to: str, body: str, since: datetime, until: datetime | None = None
    ) -> Sequence[str] | None:
        return []


# --- set-up ------------------------------------------------------------------------------------------------


def migrated(url: str) -> Database:
    db = Database.connect(url)
    upgrade(db.engine)
    return db


def fill(db: Database, contacts: int) -> None:
    """Contacts in bulk (10,000 rows a statement) and the always-open SMS campaign; not planned yet."""
    for start in range(0, contacts, 10_000):
        rows = [
            {
                "external_id": f"c{i}",
                "name": f"Person {i}",
                "phone": f"+49151{20_000_000 + i}",
                "timezone": "UTC",
                "properties": {},
                "created_at": NOW,
                "updated_at": NOW,
            }
            for i in range(start, min(contacts, start + 10_000))
        ]
        with db.transaction() as session:
            session.execute(insert(Contact), rows)
    with db.transaction() as session:
        apply_definitions(parse_campaign_file(CAMPAIGN).campaigns, session=session, now=NOW)


def plan(db: Database) -> int:
    return plan_recurring(db, now=NOW, rules=PlanningRules(), force=True).planned


def count_sent(db: Database) -> int:
    with db.transaction() as session:
        query = select(func.count()).where(Invitation.state == InvitationState.SENT)
        return session.scalar(query) or 0


def twilio(url: str) -> TwilioSms:
    return TwilioSms(
        TwilioConfig(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, api_url=url, from_number="+15005550006")
    )


def serve_fake_twilio(latency: float, conn: Connection) -> None:
    """The fake in a process of its own (as Twilio is): sends its URL, then its send count when asked."""
    with FakeTwilio() as fake:
        fake.set_latency(latency)
        conn.send(fake.url)
        while conn.recv() == "count":
            conn.send(fake.count())


# --- 1. throughput -----------------------------------------------------------------------------------------


def dispatcher_rate(db: Database, transport: Transport, invitations: int) -> float:
    fill(db, invitations)
    assert plan(db) == invitations
    dispatcher = Dispatcher(db, {Channel.SMS: transport}, clock=ManualClock(NOW), config=CONFIG)
    started = time.perf_counter()
    try:
        sent = dispatcher.drain().sent
    finally:
        dispatcher.close()
    elapsed = time.perf_counter() - started
    assert sent == count_sent(db) == invitations, (sent, invitations)
    db.dispose()
    return sent / elapsed


def naive_rate(transport: Transport, messages: int) -> float:
    started = time.perf_counter()
    for i in range(messages):
        transport.send(Outgoing(Channel.SMS, f"+49152{20_000_000 + i}", f"Hi Person {i}, how likely ...?"))
    return messages / (time.perf_counter() - started)


def with_postgres(server_url: str, run: Callable[[Database], float]) -> float:
    """Run `run(db)` on a scratch database of the PostgreSQL server, dropped afterwards."""
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


# --- 2. memory ---------------------------------------------------------------------------------------------


def peak_rss_kib() -> int:
    """The peak resident set of this process (VmHWM), in KiB.

    Not ru_maxrss: on Linux a child started by fork + exec inherits its parent's peak in it, and the parent here
    has just written the database.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux; only a fallback


def memory_child(url: str) -> None:
    """In a fresh process: plan and drain the prepared database; prints the peak RSS before and after, in KiB."""
    db = Database.connect(url)
    dispatcher = Dispatcher(db, {Channel.SMS: MemorySms()}, clock=ManualClock(NOW), config=CONFIG)
    baseline = peak_rss_kib()
    started = time.perf_counter()
    planned = plan(db)
    sent = dispatcher.drain().sent
    elapsed = time.perf_counter() - started
    dispatcher.close()
    peak = peak_rss_kib()
    assert planned == sent == count_sent(db), (planned, sent)
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "sent": sent, "seconds": elapsed}))


def memory_run(directory: Path, invitations: int) -> dict[str, float]:
    url = f"sqlite:///{directory / f'memory-{invitations}.db'}"
    db = migrated(url)
    fill(db, invitations)
    db.dispose()
    command = [sys.executable, __file__, "--memory-child", url]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- main --------------------------------------------------------------------------------------------------

Row = tuple[str, str, str]


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


RERUN = ".venv/bin/python benchmarks/dispatch.py"


def row(label: str, value: str, ok: bool | None = None, target: str = "") -> Row:
    return label, value, "" if ok is None else f"target {target}: {'yes' if ok else 'NO'}"


def throughput_rows(directory: Path, invitations: int, naive_sends: int, server_url: str | None) -> list[Row]:
    ours, theirs = multiprocessing.Pipe()
    fake = multiprocessing.Process(target=serve_fake_twilio, args=(LATENCY, theirs), daemon=True)
    fake.start()
    sms = twilio(ours.recv())
    naive = naive_rate(sms, naive_sends)
    rate = dispatcher_rate(migrated(f"sqlite:///{directory / 'throughput.db'}"), sms, invitations)
    rows = [
        row(
            f"dispatcher, {invitations:,} invitations, SQLite",
            f"{rate:,.0f} msg/s",
            rate >= TARGET_RATE,
            ">= 300 msg/s",
        ),
        row(f"naive one-at-a-time, {naive_sends} sends", f"{naive:,.1f} msg/s"),
        row("speed-up over naive", f"{rate / naive:,.1f}x", rate / naive >= TARGET_SPEEDUP, ">= 30x"),
    ]
    bench(
        f"dispatch, {invitations:,} invitations, 100 ms provider latency, SQLite (baseline: naive sequential)",
        naive,
        rate,
        "msg/s",
        rate / naive,
        f">= {TARGET_RATE:.0f} msg/s and >= {TARGET_SPEEDUP:.0f}x",
        rate >= TARGET_RATE and rate / naive >= TARGET_SPEEDUP,
        RERUN,
    )
    if server_url:
        pg = with_postgres(server_url, lambda db: dispatcher_rate(db, sms, invitations))
        rows.append(
            row(
                f"dispatcher, {invitations:,} invitations, PostgreSQL",
                f"{pg:,.0f} msg/s",
                pg >= TARGET_RATE,
                ">= 300 msg/s",
            )
        )
        bench(
            f"dispatch, {invitations:,} invitations, 100 ms provider latency, PostgreSQL (baseline: naive)",
            naive,
            pg,
            "msg/s",
            pg / naive,
            f">= {TARGET_RATE:.0f} msg/s",
            pg >= TARGET_RATE,
            "TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test " + RERUN,
        )
    ours.send("count")
    sent = ours.recv()
    ours.send("stop")
    fake.join(timeout=10)
    assert sent == naive_sends + invitations * (2 if server_url else 1), f"the fake Twilio saw {sent} sends"
    return rows


def memory_rows(directory: Path, sizes: tuple[int, int]) -> list[Row]:
    rows, growth = [], []
    for size in sizes:
        run = memory_run(directory, size)
        growth.append((run["peak_kib"] - run["baseline_kib"]) / 1024)
        detail = f"({run['peak_kib'] / 1024:,.0f} MiB peak, {run['seconds']:,.0f} s)"
        rows.append((f"peak RSS growth, {size:,} invitations", f"{growth[-1]:,.1f} MiB", detail))
    ratio = growth[1] / max(growth[0], 0.1)
    rows.append(
        row(f"memory ratio {sizes[1]:,} / {sizes[0]:,}", f"{ratio:.2f}", ratio < TARGET_MEMORY_RATIO, "< 1.5")
    )
    bench(
        f"dispatch peak RSS growth, {sizes[1]:,} invitations (baseline: {sizes[0]:,})",
        growth[0],
        growth[1],
        "MiB",
        ratio,
        f"ratio < {TARGET_MEMORY_RATIO}",
        ratio < TARGET_MEMORY_RATIO,
        RERUN,
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--memory-child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    invitations, naive_sends, sizes = (
        (500, 20, (2_000, 20_000)) if args.quick else (2_000, 50, (10_000, 200_000))
    )
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        rows = throughput_rows(directory, invitations, naive_sends, os.environ.get("TEST_DATABASE_URL"))
        rows += memory_rows(directory, sizes)
    print(
        f"dispatch: fake Twilio answering after {LATENCY * 1000:.0f} ms, "
        f"{CONFIG.concurrency} concurrent sends, batches of {CONFIG.batch_size}"
    )
    width = max(len(label) for label, _, _ in rows)
    for label, value, note in rows:
        print(f"  {label:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
