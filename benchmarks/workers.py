"""Dispatch across processes: one and two `nps worker` processes on PostgreSQL, and one worker's memory.

Each run fills a scratch PostgreSQL database with N due invitations, starts the fake Twilio in a process of its
own (as Twilio is) answering every send after 100 ms, then starts K real `nps worker --exit-when-idle` processes
and times them from start until the outbox is empty. The baseline is one worker in the same run, alternated with
two. Targets: two workers >= 300 msg/s, >= 1.6x one worker (scaling), zero duplicates (the fake counts the sends
to each number; every invitation is `sent` once) and every invitation sent.

Memory (run first; `--only memory` alone, `--only scaling` for the figures above alone): one `nps worker` sends the same number of messages (10,000) from an outbox of 10,000
due invitations and, in a fresh process, from one of 1,000,000 (filled with INSERT ... SELECT, not planned:
benchmarks/planning.py measures the planner). Its peak RSS (VmHWM) should not depend on the outbox (ratio < 1.5),
and within the 1,000,000 run its RSS after 10,000 sends should be what it was after 2,000 (< 1.1x: nothing is
kept per message). The fake Twilio answers after 100 ms here too; the worker is stopped with SIGTERM, as in
production, once the fake has seen the messages. 5-7 minutes on a loaded 2-core machine (filling the
1,000,000 takes 60-90 s of it), a minute with `--quick`.

Needs TEST_DATABASE_URL (PostgreSQL: SQLite has one writer, so a second worker only waits). `--quick` sends fewer
(2,000 from 2,000 and from 200,000; RSS after 500 against after 2,000).
Run with `make bench`; rerun alone with the command printed in benchmarks/results/LATEST.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text

from benchmarks.dispatch import CAMPAIGN
from benchmarks.inbound import postgres_database
from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.store import apply_definitions
from campaigns.planning.planner import PlanningRules, plan_recurring
from storage.db import Database, upgrade
from storage.enums import InvitationState
from storage.tables import Campaign, Contact, Invitation
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.1
CONCURRENCY = (
    32  # NPS_SEND_CONCURRENCY of each worker: 320 msg/s at most at 100 ms, 2 x (32 + 8 + 8) connections
)
TARGET_RATE, TARGET_SCALING = 300.0, 1.6
TARGET_PEAK_RATIO, TARGET_GROWTH_RATIO = 1.5, 1.1  # peak RSS, 1M outbox / 10k; RSS after 10k sends / after 2k
RERUN = "TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/workers.py"


# --- the fake Twilio, in its own process -------------------------------------------------------------------


def serve_fake_twilio(latency: float, conn: Connection) -> None:
    """Sends its URL; answers "count" with the sends so far, "sends" with the count of accepted sends per number
    and the CPU seconds it has used so far (and forgets them); stops on anything else."""
    with FakeTwilio() as fake:
        fake.set_latency(latency)
        conn.send(fake.url)
        while (request := conn.recv()) in ("count", "sends"):
            if request == "count":
                conn.send(fake.count())
                continue
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(
                (dict(Counter(message.to for message in fake.messages())), usage.ru_utime + usage.ru_stime)
            )
            fake.reset()
            fake.set_latency(latency)


# --- a scratch database with N due invitations -------------------------------------------------------------


def fill_and_plan(url: str, invitations: int, now: datetime) -> None:
    """Contacts in bulk (10,000 rows a statement), the always-open SMS campaign, one due invitation each."""
    db = Database.connect(url)
    upgrade(db.engine)
    for start in range(0, invitations, 10_000):
        rows = [
            {
                "external_id": f"c{i}",
                "name": f"Person {i}",
                "phone": f"+49151{20_000_000 + i}",
                "timezone": "UTC",
                "properties": {},
                "created_at": now - timedelta(days=30),
                "updated_at": now - timedelta(days=30),
            }
            for i in range(start, min(invitations, start + 10_000))
        ]
        with db.transaction() as session:
            session.execute(insert(Contact), rows)
    with db.transaction() as session:
        apply_definitions(parse_campaign_file(CAMPAIGN).campaigns, session=session, now=now)
    planned = plan_recurring(db, now=now, rules=PlanningRules(), force=True).planned
    assert planned == invitations, (planned, invitations)
    with db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    db.dispose()


def sent_once(url: str) -> int:
    db = Database.connect(url)
    with db.transaction() as session:
        sent = session.scalar(select(func.count()).where(Invitation.state == InvitationState.SENT)) or 0
    db.dispose()
    return int(sent)


def fill_outbox(url: str, invitations: int, now: datetime) -> None:
    """N contacts and N due invitations of the always-open SMS campaign, set-based (generate_series): seconds
    for 1,000,000, where planning them would take minutes (and is benchmarks/planning.py's to measure).

    The rows are what the planner writes (`planned`, one due time for all, as a campaign planned at once has)."""
    db = Database.connect(url)
    upgrade(db.engine)
    with db.transaction() as session:
        apply_definitions(parse_campaign_file(CAMPAIGN).campaigns, session=session, now=now)
        campaign_id = session.scalar(select(Campaign.id))
    times = {"past": now - timedelta(days=30), "due": now - timedelta(minutes=1), "now": now}
    with db.engine.connect() as connection:
        connection.execute(
            text(
                "INSERT INTO contacts (external_id, name, phone, timezone, properties, test, created_at,"
                " updated_at) SELECT 'c' || i, 'Person ' || i, '+49151' || (20000000 + i), 'UTC', '{}', false,"
                " :past, :past FROM generate_series(0, :n - 1) AS i"
            ),
            {"n": invitations, **times},
        )
        connection.execute(
            text(
                "INSERT INTO invitations (campaign_id, contact_id, state, due_at, attempts, token, dedupe_key,"
                " created_at, updated_at) SELECT :campaign, id, :planned, :due, 0,"
                " substr(md5(id::text || random()::text), 1, 22), :prefix || id || :cycle, :now, :now"
                " FROM contacts"
            ),
            {
                "campaign": campaign_id,
                "planned": InvitationState.PLANNED.value,
                "prefix": f"{campaign_id}:",  # the planner's dedupe key, "<campaign>:<contact>:r<cycle>"
                "cycle": ":r1",
                **times,
            },
        )
        connection.execute(text("ANALYZE"))
        connection.commit()
    db.dispose()


# --- one run -------------------------------------------------------------------------------------------------


def worker_env(url: str, twilio_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "SMTP_", "NPS_"))}
    env.update(
        DATABASE_URL=url,
        TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=DEFAULT_AUTH_TOKEN,
        TWILIO_API_URL=twilio_url,
        TWILIO_FROM_NUMBER="+15005550006",
        NPS_SEND_CONCURRENCY=str(CONCURRENCY),
        NPS_SEND_RATE="10000",
        LOG_LEVEL="WARNING",
    )
    return env


def run_workers(
    server_url: str,
    twilio: Connection,
    twilio_url: str,
    workers: int,
    invitations: int,
    profile: Path | None = None,
) -> dict:
    """K workers draining N invitations: the rate, the duplicates the fake saw, what the outbox says.

    With `profile`, the (one) worker runs under py-spy, which writes its collapsed stacks there."""
    with postgres_database(server_url) as url:
        fill_and_plan(url, invitations, datetime.now(UTC).replace(microsecond=0))
        command = [str(Path(sys.executable).with_name("nps")), "worker", "--exit-when-idle"]
        if profile is not None:
            spy = str(Path(sys.executable).with_name("py-spy"))
            spied = ["record", "--gil", "--format", "raw", "--rate", "200", "-o", str(profile), "--"]
            command = [spy, *spied, *command]
        started = time.perf_counter()
        processes = [
            subprocess.Popen(command, env=worker_env(url, twilio_url), cwd=ROOT, stdout=subprocess.DEVNULL)
            for _ in range(workers)
        ]
        codes, cpu = [], 0.0
        for process in processes:  # wait4: the exit status and the CPU the worker used
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            codes.append(process.returncode)
            cpu += usage.ru_utime + usage.ru_stime
        elapsed = time.perf_counter() - started
        twilio.send("sends")
        per_number, fake_cpu = twilio.recv()
        return {
            "worker_cpu_ms_per_message": 1000 * cpu / invitations,
            "fake_twilio_cpu_s": fake_cpu,
            "workers": workers,
            "rate": invitations / elapsed,
            "seconds": elapsed,
            "exit_codes": codes,
            "numbers": len(per_number),
            "duplicates": sum(count - 1 for count in per_number.values() if count > 1),
            "sent": sent_once(url),
        }


def proc_status_kib(pid: int, field: str) -> int | None:
    """A memory field of /proc/<pid>/status (VmRSS: resident now, VmHWM: its peak so far), in KiB; None once
    the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def memory_run(
    server_url: str,
    twilio: Connection,
    twilio_url: str,
    outbox: int,
    sends: int,
    checkpoints: tuple[int, ...],
    timeout: float = 600.0,
) -> dict:
    """One fresh `nps worker` over an outbox of `outbox` due invitations, stopped (SIGTERM) once the fake has
    seen `sends` messages: its peak RSS then, and its RSS when the fake's count first reached each checkpoint.

    Sampled every 50 ms from /proc; the peak is the kernel's own high-water mark (VmHWM), so no spike is missed."""
    with postgres_database(server_url) as url:
        started = time.perf_counter()
        fill_outbox(url, outbox, datetime.now(UTC).replace(microsecond=0))
        filled = time.perf_counter() - started
        command = [str(Path(sys.executable).with_name("nps")), "worker"]
        worker = subprocess.Popen(
            command, env=worker_env(url, twilio_url), cwd=ROOT, stdout=subprocess.DEVNULL
        )
        rss_at: dict[int, int] = {}
        peak = count = 0
        started = time.perf_counter()
        try:
            while count < sends:
                if worker.poll() is not None or time.perf_counter() - started > timeout:
                    raise RuntimeError(
                        f"worker stopped or too slow after {count} sends ({worker.returncode})"
                    )
                time.sleep(0.05)
                twilio.send("count")
                count = twilio.recv()
                rss = proc_status_kib(worker.pid, "VmRSS") or 0
                for checkpoint in checkpoints:
                    if count >= checkpoint and checkpoint not in rss_at:
                        rss_at[checkpoint] = rss
            peak = proc_status_kib(worker.pid, "VmHWM") or 0
            elapsed = time.perf_counter() - started
        finally:
            worker.send_signal(signal.SIGTERM)  # stops after the current batch, as in production
            code = worker.wait(timeout=120)
        twilio.send("sends")
        per_number, _ = twilio.recv()
        return {
            "outbox": outbox,
            "peak_kib": peak,
            "rss_kib_at": rss_at,
            "fill_seconds": filled,
            "send_seconds": elapsed,
            "rate": count / elapsed,
            "exit_code": code,
            "sent": sent_once(url),
            "numbers": len(per_number),
            "duplicates": sum(n - 1 for n in per_number.values() if n > 1),
        }


def top_entries(collapsed: str, count: int = 45) -> list[str]:
    """Where the worker's CPU went: functions by their own samples (self) and with what they call (inclusive).

    py-spy leaves idle samples out by default, so a thread waiting on Twilio's 100 ms costs nothing here."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = [
            frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for frame in stack.split(";")
        ]
        own[frames[-1]] += int(samples)
        for frame in dict.fromkeys(frames):
            inclusive[frame] += int(samples)
    total = sum(own.values()) or 1
    lines = ["self:"] + [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(count)]
    return (
        lines
        + ["inclusive:"]
        + [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(count)]
    )


def bench(
    figure: str, baseline: float, ours: float, unit: str, target: str, passed: bool, rerun: str = RERUN
) -> None:
    values = {"figure": figure, "baseline": round(baseline, 3), "ours": round(ours, 3), "unit": unit}
    ratio = round(ours / baseline, 3) if baseline else None
    print("BENCH " + json.dumps({**values, "ratio": ratio, "target": target, "pass": passed, "rerun": rerun}))


def memory_figures(server_url: str, twilio: Connection, twilio_url: str, quick: bool) -> None:
    """Peak RSS of one worker sending the same messages from a small and a large outbox; RSS growth per message."""
    small, large, sends, early = (2_000, 200_000, 2_000, 500) if quick else (10_000, 1_000_000, 10_000, 2_000)
    runs = {}
    for outbox in (small, large):  # each a fresh worker process
        runs[outbox] = memory_run(server_url, twilio, twilio_url, outbox, sends, (early, sends))
        run = runs[outbox]
        print(
            f"  memory, outbox {outbox:,}: peak {run['peak_kib'] / 1024:,.1f} MiB, "
            f"{run['rate']:,.0f} msg/s, {json.dumps(run)}",
            flush=True,
        )
    complete = all(
        run["duplicates"] == 0 and run["sent"] == run["numbers"] >= sends and run["exit_code"] == 0
        for run in runs.values()
    )
    base, ours = runs[small]["peak_kib"] / 1024, runs[large]["peak_kib"] / 1024
    memory = f"one nps worker, {sends:,} sends, PostgreSQL"
    bench(
        f"dispatch peak RSS, {memory}, outbox of {large:,} due invitations (baseline: outbox of {small:,})",
        base,
        ours,
        "MiB",
        f"ratio < {TARGET_PEAK_RATIO}, every send once",
        ours / base < TARGET_PEAK_RATIO and complete,
        RERUN + " --only memory",
    )
    rss = runs[large]["rss_kib_at"]
    before, after = rss[early] / 1024, rss[sends] / 1024
    for outbox, run in runs.items():
        grown = run["rss_kib_at"][sends] - run["rss_kib_at"][early]
        print(
            f"memory: outbox {outbox:,}: RSS {run['rss_kib_at'][early] / 1024:,.1f} MiB after {early:,} sends, "
            f"{run['rss_kib_at'][sends] / 1024:,.1f} MiB after {sends:,} ({grown / (sends - early):.2f} KiB a "
            f"send), peak {run['peak_kib'] / 1024:,.1f} MiB, {run['rate']:,.0f} msg/s"
        )
    bench(
        f"dispatch RSS after {sends:,} sends (baseline: after {early:,}), {memory}, outbox of {large:,}",
        before,
        after,
        "MiB",
        f"ratio < {TARGET_GROWTH_RATIO} (nothing kept per message)",
        after / before < TARGET_GROWTH_RATIO,
        RERUN + " --only memory",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 invitations a run instead of 10,000")
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds of one and two workers")
    parser.add_argument("--profile", action="store_true", help="one worker under py-spy: where its CPU goes")
    parser.add_argument("--only", choices=("scaling", "memory"), help="one of the two figures")
    args = parser.parse_args()
    server_url = os.environ.get("TEST_DATABASE_URL", "")
    if not server_url.startswith("postgresql"):
        print(
            "benchmarks/workers.py: set TEST_DATABASE_URL to a PostgreSQL server (workers share its outbox)"
        )
        return
    invitations = 2_000 if args.quick else 10_000
    ours, theirs = multiprocessing.Pipe()
    fake = multiprocessing.Process(target=serve_fake_twilio, args=(LATENCY, theirs), daemon=True)
    fake.start()
    twilio_url = ours.recv()
    runs: dict[int, list[dict]] = {1: [], 2: []}
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            stacks = Path(tmp) / "stacks.txt"
            try:
                run = run_workers(server_url, ours, twilio_url, 1, invitations, profile=stacks)
            finally:
                ours.send("stop")
            print(f"profile: one worker, {run['rate']:,.0f} msg/s under py-spy")
            print("\n".join(top_entries(stacks.read_text() if stacks.exists() else "")))
        return
    if args.only != "scaling":
        try:
            memory_figures(server_url, ours, twilio_url, args.quick)
        finally:
            if args.only == "memory":
                ours.send("stop")
        if args.only == "memory":
            return
    try:
        for _ in range(args.rounds):
            for workers in (1, 2):
                run = run_workers(server_url, ours, twilio_url, workers, invitations)
                print(f"  {workers} worker(s): {run['rate']:,.0f} msg/s, {json.dumps(run)}", flush=True)
                runs[workers].append(run)
    finally:
        ours.send("stop")
        fake.join(timeout=10)
    one = max(run["rate"] for run in runs[1])
    two = max(run["rate"] for run in runs[2])
    complete = all(
        run["sent"] == run["numbers"] == invitations
        and run["duplicates"] == 0
        and run["exit_codes"] == [0] * w
        for w, group in runs.items()
        for run in group
    )
    label = f"{invitations:,} invitations, 100 ms provider latency, PostgreSQL"
    bench(
        f"dispatch, two nps worker processes, {label} (baseline: one worker)",
        one,
        two,
        "msg/s",
        f">= {TARGET_RATE:.0f} msg/s and >= {TARGET_SCALING}x one worker",
        two >= TARGET_RATE and two / one >= TARGET_SCALING,
    )
    duplicates = sum(run["duplicates"] for group in runs.values() for run in group)
    bench(
        f"dispatch, {args.rounds * 2} worker runs, {label}: duplicate and missing sends",
        0,
        duplicates + sum(invitations - run["sent"] for group in runs.values() for run in group),
        "sends",
        "0 duplicates, every invitation sent once",
        complete,
    )
    print(f"workers: best of {args.rounds}: one {one:,.0f} msg/s, two {two:,.0f} msg/s ({two / one:.2f}x)")


if __name__ == "__main__":
    main()
