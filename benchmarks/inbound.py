"""Inbound SMS replies: signed Twilio webhooks against `nps serve`, next to a bare endpoint on the same stack.

The load generator is an async httpx client in a process of its own, on loopback, posting pre-signed bodies:
each request a distinct MessageSid and From number, each a score reply to a real invitation (sent before the
run). The app is `nps serve` as production runs it (a subprocess, uvicorn); the baseline is a bare endpoint on
the same server stack (uvicorn + FastAPI) that only verifies the signature and answers the same TwiML. The two
are measured alternately, round after round, in the same run.

Figures, on SQLite and (with TEST_DATABASE_URL; a database of its own, dropped afterwards) on PostgreSQL:

1. requests/s at 16 connections (closed loop), ours against the baseline's: target >= 40%;
2. p99 at a fixed 200 requests/s for 15 s (open loop, latency counted from each request's planned start, so a
   queue that builds up shows): target < 50 ms;
3. the same fixed rate while the scheduler dispatches a campaign (fake Twilio answering after 100 ms);
4. every acknowledged message stored and handled afterwards, and 0 errors, in every phase;
5. the server process's CPU seconds per acknowledged request in the closed-loop rounds (/proc/<pid>/stat,
   user + system), ours against the baseline's: target <= 2.5x. On a shared machine this is the figure that
   predicts the idle machine's requests/s; wall-clock figures follow the neighbours' load.

`--profile N` instead runs `nps serve` under py-spy (`--gil`: samples holding the GIL, the server's own CPU) while one connection posts N replies (PostgreSQL with
TEST_DATABASE_URL), prints the top entries, and counts statements and commits per request (SQLAlchemy events). `--quick` shortens every phase. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import PlainTextResponse, Response  # noqa: E402
from sqlalchemy import create_engine, event, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from campaigns.channels.base import Outgoing  # noqa: E402
from campaigns.clock import SystemClock  # noqa: E402
from campaigns.definitions.campaign_file import parse_campaign_file  # noqa: E402
from campaigns.definitions.store import apply_definitions  # noqa: E402
from campaigns.dispatch.dispatcher import DispatchConfig, Dispatcher  # noqa: E402
from campaigns.planning.planner import PlanningRules, plan_recurring  # noqa: E402
from storage.db import Database, upgrade  # noqa: E402
from storage.enums import Channel, Direction, InboundState, MessagePurpose, SendState  # noqa: E402
from storage.tables import Contact, Message  # noqa: E402
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio  # noqa: E402
from tests.standins.twilio_webhooks import inbound_sms_params, sign_twilio_request  # noqa: E402

PUBLIC_URL = "https://nps.example.com"
SMS_URL = f"{PUBLIC_URL}/twilio/sms"
FROM_NUMBER = "+15005550006"
CONNECTIONS = 16
FIXED_RATE = 200.0
TARGET_RATIO, TARGET_P99_MS = 0.40, 50.0
# The server's CPU per acknowledged request against the bare endpoint's: what the idle-machine req/s follows.
TARGET_CPU_RATIO = 2.5
PROVIDER_LATENCY = 0.1
# A first score reply before the round trips were cut (e470633): 24 statements, 3 commits, on both databases
# (tests/campaigns/replies/test_inbound_round_trips.py counts them the same way).
STATEMENTS_BEFORE = 24.0
CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""
# What the app answers a first score: the baseline answers the same TwiML.
ASK_COMMENT = "Thanks! What do you like most?"  # a promoter's question; the others are about as long


@dataclass(frozen=True)
class Sizes:
    rounds: int  # alternated closed-loop rounds per server
    closed_requests: int  # requests per closed-loop round
    fixed_seconds: float  # the fixed-rate phases

    @property
    def replies(self) -> int:
        """Distinct numbers that get a survey: one score reply each, over every phase that reaches the app."""
        return self.rounds * self.closed_requests + 2 * int(FIXED_RATE * self.fixed_seconds) + 200


QUICK = Sizes(rounds=2, closed_requests=200, fixed_seconds=3.0)
FULL = Sizes(rounds=3, closed_requests=1_500, fixed_seconds=15.0)


def phone(i: int) -> str:
    return f"+49151{30_000_000 + i}"


# --- the database: surveyed contacts, and a campaign left for the scheduler --------------------------------


def fill(db: Database, start: int, count: int, now: datetime) -> None:
    for first in range(start, start + count, 10_000):
        rows = [
            {
                "external_id": f"c{i}",
                "name": f"Person {i}",
                "phone": phone(i),
                "timezone": "UTC",
                "properties": {},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(first, min(start + count, first + 10_000))
        ]
        with db.transaction() as session:
            session.execute(insert(Contact), rows)


class MemorySms:
    """Accepts every survey text at once: setting up thousands of sent invitations takes seconds."""

    channel = Channel.SMS
    name = "memory"

    def send(self, message: Outgoing) -> str:
        return "SM" + uuid.uuid4().hex

    def find_sent(
        self, to: str, body: str, since: datetime, until: datetime | None = None
    ) -> Sequence[str] | None:
        return []


def prepare(url: str, surveyed: int, pending: int) -> None:
    """`surveyed` contacts with a survey text sent, then `pending` more with theirs planned, not sent yet."""
    db = Database.connect(url)
    upgrade(db.engine)
    now = datetime.now(UTC)
    fill(db, 0, surveyed, now)
    with db.transaction() as session:
        apply_definitions(parse_campaign_file(CAMPAIGN).campaigns, session=session, now=now)
    rules = PlanningRules()
    assert plan_recurring(db, now=now, rules=rules, force=True).planned == surveyed
    config = DispatchConfig(batch_size=500, concurrency=16, rate_per_second=1_000_000)
    dispatcher = Dispatcher(db, {Channel.SMS: MemorySms()}, clock=SystemClock(), config=config)
    try:
        assert dispatcher.drain().sent == surveyed
    finally:
        dispatcher.close()
    fill(db, surveyed, pending, now)
    assert plan_recurring(db, now=now, rules=rules, force=True).planned == pending
    # A database in service has statistics; one filled a moment ago has none until autovacuum's next pass, and
    # PostgreSQL without them finds a reply's survey by reading every survey text sent (the plan test in
    # tests/campaigns/replies/test_reply_query_plan.py holds for an analysed database).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")
    db.dispose()


def stored_and_handled(url: str, sids: Sequence[str]) -> int:
    """How many of `sids` are stored and handled (``processed``)."""
    db = Database.connect(url)
    found = 0
    try:
        with db.transaction() as session:
            for first in range(0, len(sids), 1_000):
                found += (
                    session.scalar(
                        select(func.count()).where(
                            Message.direction == Direction.INBOUND,
                            Message.provider_id.in_(sids[first : first + 1_000]),
                            Message.inbound_state == InboundState.PROCESSED,
                        )
                    )
                    or 0
                )
    finally:
        db.dispose()
    return found


def sent_invitations(url: str) -> int:
    """Survey texts the provider took (counted on the messages: an answered invitation leaves ``sent``)."""
    db = Database.connect(url)
    try:
        with db.transaction() as session:
            query = select(func.count()).where(
                Message.direction == Direction.OUTBOUND,
                Message.purpose == MessagePurpose.INVITATION,
                Message.send_state == SendState.SENT,
            )
            return session.scalar(query) or 0
    finally:
        db.dispose()


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    name = f"nps_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- the servers -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not listen within {timeout:.0f} s")


@contextmanager
def running(
    command: list[str], port: int, env: dict[str, str], log: Path, stop: int = signal.SIGTERM
) -> Iterator[int]:
    """Runs the server while the block runs; gives the block the server's process id."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            try:
                wait_listening(port, process)
            except RuntimeError:
                sys.stderr.write(log.read_text(errors="replace")[-3000:])
                raise
            yield process.pid
        finally:
            process.send_signal(stop)  # py-spy writes its samples on SIGINT
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process used so far, from /proc/<pid>/stat.

    On a shared machine wall time says how busy the others are; CPU per request is what the server costs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), counted after the name
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def app_command(port: int, scheduler: bool) -> list[str]:
    nps = Path(sys.executable).with_name("nps")
    flag = "--scheduler" if scheduler else "--no-scheduler"
    return [str(nps), "serve", "--port", str(port), flag]


def app_env(url: str, twilio_api: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TWILIO_", "SMTP_"))}
    env.update(
        DATABASE_URL=url,
        PUBLIC_BASE_URL=PUBLIC_URL,
        HOST="127.0.0.1",
        TWILIO_AUTH_TOKEN=DEFAULT_AUTH_TOKEN,
        LOG_LEVEL="WARNING",
        NPS_TICK_SECONDS="1",
        NPS_SEND_RATE="100",
        NPS_SEND_CONCURRENCY="16",
        TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
        TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_URL=twilio_api,
    )
    return env


def baseline_server(port: int) -> None:
    """The bare endpoint: verify the signature, answer the TwiML the app answers a first score."""
    import uvicorn
    from twilio.request_validator import RequestValidator
    from twilio.twiml.messaging_response import MessagingResponse

    app = FastAPI()
    validator = RequestValidator(DEFAULT_AUTH_TOKEN)

    @app.post("/twilio/sms")
    async def sms(request: Request) -> Response:
        fields = await request.form()
        form = {key: value for key, value in fields.multi_items() if isinstance(value, str)}
        signature = request.headers.get("x-twilio-signature", "")
        if not validator.validate(PUBLIC_URL + request.url.path, form, signature):
            return PlainTextResponse("invalid or missing X-Twilio-Signature", status_code=403)
        answer = MessagingResponse()
        answer.message(ASK_COMMENT)
        return Response(str(answer), media_type="application/xml")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- the load generator (a process of its own) -------------------------------------------------------------

Signed = tuple[str, str, str]  # MessageSid, urlencoded body, signature


def signed_requests(first: int, count: int) -> list[Signed]:
    """Score replies from numbers first..first+count, each with a fresh MessageSid, signed as Twilio signs."""
    requests = []
    for i in range(first, first + count):
        params = inbound_sms_params(phone(i), FROM_NUMBER, str(i % 11), "SM" + uuid.uuid4().hex)
        signature = sign_twilio_request(DEFAULT_AUTH_TOKEN, SMS_URL, params)
        requests.append((params["MessageSid"], urlencode(params), signature))
    return requests


@dataclass
class Outcome:
    seconds: float
    latencies: list[float]  # of the acknowledged ones
    acknowledged: list[str]  # MessageSids answered 200 with TwiML
    errors: int

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "latencies": self.latencies,
            "acknowledged": self.acknowledged,
            "errors": self.errors,
        }


async def _post(client: Any, port: int, request: Signed) -> bool:
    _sid, body, signature = request
    try:
        response = await client.post(
            f"http://127.0.0.1:{port}/twilio/sms",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature},
        )
    except Exception as error:
        sys.stderr.write(f"a request failed: {type(error).__name__}: {error}\n")
        return False
    answered = response.status_code == 200 and response.text.startswith("<?xml")
    if not answered:
        sys.stderr.write(f"a request was answered {response.status_code}: {response.text[:80]!r}\n")
    return answered


def _client(connections: int) -> Any:
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0))


async def closed_loop(port: int, requests: list[Signed], connections: int) -> Outcome:
    """`connections` clients, each posting its next request as soon as the last one was answered."""
    outcome = Outcome(0.0, [], [], 0)
    queue = iter(requests)
    async with _client(connections) as client:

        async def worker() -> None:
            for request in queue:
                started = time.perf_counter()
                if await _post(client, port, request):
                    outcome.latencies.append(time.perf_counter() - started)
                    outcome.acknowledged.append(request[0])
                else:
                    outcome.errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        outcome.seconds = time.perf_counter() - started
    return outcome


async def fixed_rate(port: int, requests: list[Signed], rate: float, senders: int = 64) -> Outcome:
    """Request i is due at i / rate and its latency counts from then, however the earlier ones fare: a server
    that falls behind shows as a growing latency. `senders` coroutines share the schedule (64 keep 200 req/s
    going up to 320 ms a request); a pool of one coroutine per request makes httpx's pool the bottleneck."""
    outcome = Outcome(0.0, [], [], 0)
    schedule = iter(enumerate(requests))
    async with _client(senders) as client:
        started = time.perf_counter()

        async def sender() -> None:
            for i, request in schedule:
                planned = started + i / rate
                await asyncio.sleep(max(0.0, planned - time.perf_counter()))
                if await _post(client, port, request):
                    outcome.latencies.append(time.perf_counter() - planned)
                    outcome.acknowledged.append(request[0])
                else:
                    outcome.errors += 1

        await asyncio.gather(*(sender() for _ in range(senders)))
        outcome.seconds = time.perf_counter() - started
    return outcome


def load_child(conn: Connection) -> None:
    """Serves load orders from the parent: ("closed" | "one" | "fixed", port, first number, count)."""
    while True:
        order = conn.recv()
        if order is None:
            return
        kind, port, first, count = order
        requests = signed_requests(first, count)  # signed before the clock starts
        if kind in ("closed", "one"):
            outcome = asyncio.run(closed_loop(port, requests, CONNECTIONS if kind == "closed" else 1))
        else:
            outcome = asyncio.run(fixed_rate(port, requests, FIXED_RATE))
        conn.send(outcome.summary())


class LoadGenerator:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=load_child, args=(theirs,), daemon=True)
        self.process.start()

    def run(self, kind: str, port: int, first: int, count: int) -> dict[str, Any]:
        progress(f"{kind} load, {count} requests, port {port}")
        self.conn.send((kind, port, first, count))
        result: dict[str, Any] = self.conn.recv()
        return result

    def close(self) -> None:
        self.conn.send(None)
        self.process.join(timeout=10)


def serve_fake_twilio(conn: Connection) -> None:
    with FakeTwilio() as fake:
        fake.set_latency(PROVIDER_LATENCY)
        conn.send(fake.url)
        conn.recv()


# --- one database: every phase -----------------------------------------------------------------------------


def progress(what: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {what}\n")


def _dispatching_only(
    label: str,
    url: str,
    load: LoadGenerator,
    app_port: int,
    env: dict[str, str],
    logs: Path,
    fixed_count: int,
    fake: Any,
    ours_conn: Connection,
) -> list[dict[str, Any]]:
    """Only the fixed rate while the scheduler dispatches (`--dispatching-only`): the row to rerun after a change."""
    sent_before = sent_invitations(url)
    scheduler = running(
        app_command(app_port, scheduler=True), app_port, env, logs / f"app-{label}-scheduler.log"
    )
    with scheduler:
        time.sleep(2)  # the scheduler's first ticks: dispatch under way
        dispatching = load.run("fixed", app_port, 0, fixed_count)
        dispatched = sent_invitations(url) - sent_before
    ours_conn.send("stop")
    fake.join(timeout=10)
    stored = stored_and_handled(url, dispatching["acknowledged"])
    busy_p99 = p99_ms(dispatching["latencies"])
    answered = len(dispatching["acknowledged"])
    print(
        f"inbound SMS, {label}, while the scheduler dispatches ({dispatched} surveys sent meanwhile): "
        f"{answered} of {fixed_count} answered, p99 {busy_p99:,.1f} ms, "
        f"stored and handled {stored}, errors {dispatching['errors']}"
    )
    return []


def p99_ms(latencies: list[float]) -> float:
    if not latencies:
        return float("inf")
    ordered = sorted(latencies)
    return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def bench(
    label: str, url: str, sizes: Sizes, load: LoadGenerator, logs: Path, *, dispatching_only: bool = False
) -> list[dict[str, Any]]:
    pending = int(FIXED_RATE * sizes.fixed_seconds)  # the scheduler sends SEND_RATE=100 a second meanwhile
    progress(f"{label}: preparing {sizes.replies} surveyed contacts, {pending} pending")
    prepare(url, sizes.replies, pending)
    quick = " --quick" if sizes is QUICK else ""
    rerun = f"{_rerun_prefix(label)}.venv/bin/python benchmarks/inbound.py --only {label}{quick}"
    app_port, base_port = free_port(), free_port()
    acknowledged: list[str] = []
    errors = 0
    baseline_rates, our_rates = [], []
    number = 0
    base_command = [sys.executable, __file__, "--baseline-server", str(base_port)]
    context = multiprocessing.get_context("spawn")
    ours_conn, theirs = context.Pipe()
    fake = context.Process(target=serve_fake_twilio, args=(theirs,), daemon=True)
    fake.start()
    env = app_env(url, ours_conn.recv())
    baseline_cpu, our_cpu = [], []  # CPU seconds per acknowledged request, a round each
    fixed_count = int(FIXED_RATE * sizes.fixed_seconds)
    if dispatching_only:
        return _dispatching_only(label, url, load, app_port, env, logs, fixed_count, fake, ours_conn)
    with running(base_command, base_port, dict(os.environ), logs / "baseline.log") as base_pid:
        app = running(app_command(app_port, scheduler=False), app_port, env, logs / f"app-{label}.log")
        with app as app_pid:
            load.run("closed", app_port, 10**7, 50)  # warm-up: connections, caches (numbers without surveys)
            load.run("closed", base_port, 10**7, 200)
            for _ in range(sizes.rounds):
                base, cpu = measured(load, base_pid, "closed", base_port, 0, sizes.closed_requests)
                baseline_rates.append(len(base["acknowledged"]) / base["seconds"])
                baseline_cpu.append(cpu)
                ours, cpu = measured(load, app_pid, "closed", app_port, number, sizes.closed_requests)
                number += sizes.closed_requests
                our_rates.append(len(ours["acknowledged"]) / ours["seconds"])
                our_cpu.append(cpu)
                acknowledged += ours["acknowledged"]
                errors += ours["errors"]
            base_fixed = load.run("fixed", base_port, 0, fixed_count)
            fixed = load.run("fixed", app_port, number, fixed_count)
            number += fixed_count
            acknowledged += fixed["acknowledged"]
            errors += fixed["errors"]
        sent_before = sent_invitations(url)
        with running(
            app_command(app_port, scheduler=True), app_port, env, logs / f"app-{label}-scheduler.log"
        ):
            time.sleep(2)  # the scheduler's first ticks: dispatch under way
            dispatching = load.run("fixed", app_port, number, fixed_count)
            dispatched = sent_invitations(url) - sent_before
        ours_conn.send("stop")
        fake.join(timeout=10)
    acknowledged += dispatching["acknowledged"]
    errors += dispatching["errors"]
    stored = stored_and_handled(url, acknowledged)
    baseline_rate, our_rate = statistics.median(baseline_rates), statistics.median(our_rates)
    ratio = our_rate / baseline_rate if baseline_rate else 0.0
    base_ms, our_ms = 1000 * statistics.median(baseline_cpu), 1000 * statistics.median(our_cpu)
    cpu_ratio = our_ms / base_ms if base_ms else None
    fixed_p99, base_p99, busy_p99 = (
        p99_ms(fixed["latencies"]),
        p99_ms(base_fixed["latencies"]),
        p99_ms(dispatching["latencies"]),
    )
    fixed_answered = len(fixed["acknowledged"])
    busy_answered = len(dispatching["acknowledged"])
    print(f"inbound SMS, {label}: rounds alternated, {sizes.closed_requests} requests each")
    print(f"  baseline rounds (req/s): {', '.join(f'{r:,.0f}' for r in baseline_rates)}")
    print(f"  ours rounds (req/s):     {', '.join(f'{r:,.0f}' for r in our_rates)}")
    print(
        f"  server CPU per request: baseline {base_ms:.2f} ms, ours {our_ms:.2f} ms "
        f"({cpu_ratio or 0:.2f}x; rounds: {', '.join(f'{1000 * c:.2f}' for c in our_cpu)} ms)"
    )
    print(
        f"  fixed {FIXED_RATE:.0f} req/s for {sizes.fixed_seconds:g} s: {fixed_answered} of {fixed_count} answered, "
        f"p99 {fixed_p99:,.1f} ms (baseline p99 {base_p99:,.1f} ms)"
    )
    print(
        f"  same while the scheduler dispatches ({dispatched} surveys sent meanwhile): {busy_answered} of "
        f"{fixed_count} answered, p99 {busy_p99:,.1f} ms"
    )
    print(f"  acknowledged {len(acknowledged)}, stored and handled {stored}, errors {errors}")
    return [
        bench_line(
            f"inbound SMS req/s, {CONNECTIONS} connections, {label}",
            baseline_rate,
            our_rate,
            "req/s",
            ratio,
            f">= {TARGET_RATIO:.0%} of baseline",
            ratio >= TARGET_RATIO,
            rerun,
        ),
        bench_line(
            f"inbound SMS server CPU per request, {CONNECTIONS} connections, {label}",
            base_ms,
            our_ms,
            "ms",
            cpu_ratio,
            f"<= {TARGET_CPU_RATIO:g}x the baseline's",
            cpu_ratio is not None and cpu_ratio <= TARGET_CPU_RATIO,
            rerun,
        ),
        bench_line(
            f"inbound SMS p99 at {FIXED_RATE:.0f} req/s for {sizes.fixed_seconds:g} s, {label}",
            base_p99,
            fixed_p99,
            "ms",
            fixed_p99 / base_p99 if base_p99 else None,
            f"< {TARGET_P99_MS:.0f} ms",
            fixed_p99 < TARGET_P99_MS and fixed_answered == fixed_count,
            rerun,
        ),
        bench_line(
            f"inbound SMS p99 at {FIXED_RATE:.0f} req/s while dispatching, {label}",
            base_p99,
            busy_p99,
            "ms",
            busy_p99 / base_p99 if base_p99 else None,
            f"< {TARGET_P99_MS:.0f} ms, dispatch under way",
            busy_p99 < TARGET_P99_MS and busy_answered == fixed_count and dispatched > 0,
            rerun,
        ),
        bench_line(
            f"inbound SMS acknowledged and stored, errors, {label}",
            len(acknowledged),
            stored,
            "messages",
            stored / len(acknowledged) if acknowledged else None,
            "all stored, 0 errors",
            stored == len(acknowledged) and errors == 0,
            rerun,
        ),
    ]


def measured(
    load: LoadGenerator, pid: int, kind: str, port: int, first: int, count: int
) -> tuple[dict[str, Any], float]:
    """One load order, and the CPU seconds the server process `pid` used per acknowledged request meanwhile."""
    before = cpu_seconds(pid)
    outcome = load.run(kind, port, first, count)
    used = cpu_seconds(pid) - before
    return outcome, used / max(1, len(outcome["acknowledged"]))


def _rerun_prefix(label: str) -> str:
    return (
        "TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test "
        if label == "PostgreSQL"
        else ""
    )


def bench_line(
    figure: str,
    baseline: float | None,
    ours: float | None,
    unit: str,
    ratio: float | None,
    target: str,
    passed: bool,
    rerun: str,
) -> dict[str, Any]:
    """One figure, printed as the BENCH line benchmarks/summary.py collects."""
    line = {
        "figure": figure,
        "baseline": _round(baseline),
        "ours": _round(ours),
        "unit": unit,
        "ratio": _round(ratio, 3),
        "target": target,
        "pass": bool(passed),
        "rerun": rerun,
    }
    print("BENCH " + json.dumps(line))
    return line


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


# --- profile: the webhook's steps, one request at a time ---------------------------------------------------


class Counter:
    """Statements and commits on an engine (SQLAlchemy events), for a count per request."""

    def __init__(self, engine: Any) -> None:
        self.statements = self.commits = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *_args: Any) -> None:
        self.statements += 1

    def _commit(self, *_args: Any) -> None:
        self.commits += 1


def count_statements(url: str, first: int, requests: int) -> tuple[float, float]:
    """Statements and commits per score reply, posted one at a time to the app in this process."""
    from starlette.testclient import TestClient

    from service.container import build_container
    from service.settings import parse_settings
    from service.web.app import create_app

    settings = parse_settings(
        {
            "DATABASE_URL": url,
            "PUBLIC_BASE_URL": PUBLIC_URL,
            "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
        }
    )
    container = build_container(settings)
    counter = Counter(container.db.engine)
    with TestClient(create_app(container)) as client:
        for i, (_sid, body, signature) in enumerate(signed_requests(first, requests + 10)):
            if i == 10:  # after the warm-up
                counter.statements = counter.commits = 0
            response = client.post(
                "/twilio/sms",
                content=body,
                headers={
                    "content-type": "application/x-www-form-urlencoded",
                    "x-twilio-signature": signature,
                },
            )
            assert response.status_code == 200 and "<Message>" in response.text, response.text
    container.close()
    return counter.statements / requests, counter.commits / requests


def profile(url: str, requests: int, load: LoadGenerator, logs: Path) -> None:
    """`nps serve` under py-spy (every thread) while one connection posts score replies; then the counts."""
    prepare(url, 2 * requests + 100, 0)
    port = free_port()
    spy = Path(sys.executable).with_name("py-spy")
    stacks = Path(os.environ.get("PROFILE_STACKS", logs / "stacks.txt"))
    command = [
        str(spy),
        "record",
        "--format",
        "raw",
        "--rate",
        "100",
        "--nonblocking",
        "--gil",
        "-o",
        str(stacks),
        "--",
    ]
    context = multiprocessing.get_context("spawn")
    ours_conn, theirs = context.Pipe()
    fake = context.Process(target=serve_fake_twilio, args=(theirs,), daemon=True)
    fake.start()
    env = app_env(url, ours_conn.recv())
    with running(
        command + app_command(port, scheduler=False), port, env, logs / "profile.log", signal.SIGINT
    ):
        load.run("one", port, 10**7, 50)  # warm-up, numbers without surveys
        outcome = load.run("one", port, 0, requests)
    ours_conn.send("stop")
    fake.join(timeout=10)
    time.sleep(1)  # py-spy writes its file when the server has exited
    rate = len(outcome["acknowledged"]) / outcome["seconds"]
    collapsed = stacks.read_text() if stacks.exists() else ""
    print(f"profile: samples holding the GIL, inclusive ({outcome['errors']} errors)")
    for line in top_entries(collapsed):
        print("  " + line, flush=True)
    print("profile: own time, the top entries")
    for line in top_entries(collapsed, own=True):
        print("  " + line, flush=True)
    statements, commits = count_statements(url, requests, requests)
    backend = make_url(url).get_backend_name()
    print(
        f"profile: {requests} score replies over one connection to `nps serve` on {backend}: {rate:,.0f} req/s "
        f"({1000 / rate:.1f} ms a request), {statements:.1f} statements and {commits:.1f} commits per request"
    )
    print(
        "BENCH "
        + json.dumps(
            {
                "figure": f"inbound SMS, 1 connection, {backend}: statements per request "
                f"(commits: 3 before, {commits:.1f} now)",
                "baseline": STATEMENTS_BEFORE,
                "ours": round(statements, 1),
                "unit": "statements",
                "ratio": round(statements / STATEMENTS_BEFORE, 3),
                "target": "fewer round trips than before (24 statements, 3 commits)",
                "pass": statements < STATEMENTS_BEFORE and commits <= 2,
                "rerun": f"{_rerun_prefix('PostgreSQL' if backend != 'sqlite' else '')}"
                f".venv/bin/python benchmarks/inbound.py --profile {requests}",
            }
        )
    )


def top_entries(collapsed: str, count: int = 15, own: bool = False) -> list[str]:
    """The functions where the most samples were, inclusive (or `own`: the innermost frame only), from py-spy's
    raw (collapsed) stacks: "frame;frame;... samples" per line. Sampled with --gil, every sample is CPU the
    server spent, in the event loop (HTTP parsing, the form, the signature) or in a request's thread; the
    start-up (imports, the first connection) is left out."""
    totals: dict[str, int] = {}
    working = 0
    for line in collapsed.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = stack.split(";")
        if not any(frame.startswith(_SERVING) for frame in frames):
            continue
        frames = frames[-1:] if own else frames
        working += int(samples)
        for frame in dict.fromkeys(_frame_name(frame) for frame in frames):
            totals[frame] = totals.get(frame, 0) + int(samples)
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return [f"{100 * n / working:5.1f}%  {name}" for name, n in ranked[:count] if working]


# The frames under which a server serves: the event loop's iterations, and the threads running sync endpoints.
_SERVING = ("BaseEventLoop._run_once ", "WorkerThread.run ")


def _frame_name(frame: str) -> str:
    """ "function (path/to/file.py:12)" -> "function (file.py)", so a function's lines add up."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


# --- main --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases, for a smoke run")
    parser.add_argument("--only", choices=("SQLite", "PostgreSQL"), help="one database")
    parser.add_argument(
        "--dispatching-only", action="store_true", help="only the fixed rate while the scheduler dispatches"
    )
    parser.add_argument("--profile", type=int, metavar="N", help="profile N requests (PostgreSQL if set)")
    parser.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        baseline_server(args.baseline_server)
        return
    server_url = os.environ.get("TEST_DATABASE_URL")
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        load = LoadGenerator()
        try:
            if args.profile:
                if server_url:
                    with postgres_database(server_url) as url:
                        profile(url, args.profile, load, directory)
                else:
                    profile(f"sqlite:///{directory / 'profile.db'}", args.profile, load, directory)
                return
            if args.only in (None, "SQLite"):
                bench(
                    "SQLite",
                    f"sqlite:///{directory / 'inbound.db'}",
                    sizes,
                    load,
                    directory,
                    dispatching_only=args.dispatching_only,
                )
            if args.only in (None, "PostgreSQL"):
                if server_url:
                    with postgres_database(server_url) as url:
                        bench(
                            "PostgreSQL", url, sizes, load, directory, dispatching_only=args.dispatching_only
                        )
                else:
                    print("inbound SMS, PostgreSQL: skipped (set TEST_DATABASE_URL)")
        finally:
            load.close()


if __name__ == "__main__":
    main()
