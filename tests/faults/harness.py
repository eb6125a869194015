"""What the fault scenarios share: sizes, figures, `nps` processes, the outbox they start from, what survived.

Sizes: FAULTS_SIZE=small is the CI variant; any FAULTS_<NAME> variable overrides one size. Every scenario ends
with one figure line (what it tried, what survived), printed and repeated in the session's summary.
Processes are real `nps worker` / `nps serve` runs of this checkout on the system clock; every wait is bounded,
and a process that does not stop in time is killed and reported as hung.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select, text, update

from campaigns.clock import ManualClock
from service.container import Container, build_container
from service.settings import Settings
from storage.db import Database
from storage.tables import Invitation
from tests.fixtures.engine import FROM_NUMBER, add_contacts, apply_yaml, plan
from tests.fixtures.own_postgres import free_port
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

ROOT = Path(__file__).resolve().parents[2]
NPS = [sys.executable, "-c", "from service.cli import main; main()", "--env-file", os.devnull]
SMALL = os.environ.get("FAULTS_SIZE", "").lower() == "small"
SEED = int(os.environ.get("FAULTS_SEED", "10"))
FIGURES: list[str] = []
"""Every figure line of the session, for the summary (tests/faults/conftest.py)."""

SENT_STATES = {"sent", "delivered", "responded"}
LISTED_STATES = {"review", "failed", "undeliverable"}
PENDING_STATES = {"planned", "claimed"}
CLAIM_TIMEOUT_SECONDS = 90  # the smallest NPS_CLAIM_TIMEOUT_SECONDS allowed

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    timezone: ZONE
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
    messages:
      en: {sms: "Hi {{ first_name }}, how likely are you to recommend {{ company }}? {{ survey_url }}"}
"""


def size(name: str, full: int, small: int) -> int:
    """FAULTS_<NAME> if set, else the full or the small (FAULTS_SIZE=small) default."""
    raw = os.environ.get(f"FAULTS_{name}")
    return int(raw) if raw else (small if SMALL else full)


def figure(line: str) -> None:
    """The scenario's one line of what it tried and what survived."""
    FIGURES.append(line)
    print(f"\nFIGURE {line}", flush=True)


def phone(i: int) -> str:
    return f"+4915120{i:06d}"


# --- processes ---------------------------------------------------------------------------------------------


def nps_env(database_url: str, twilio_url: str, **extra: str) -> dict[str, str]:
    """The environment of an `nps` process on `database_url` sending SMS through the Twilio at `twilio_url`."""
    return {
        "DATABASE_URL": database_url,
        "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": twilio_url,
        "NPS_SEND_RATE": "1000",
        "NPS_SEND_CONCURRENCY": "8",
        "NPS_TICK_SECONDS": "1",
        "NPS_CLAIM_TIMEOUT_SECONDS": str(CLAIM_TIMEOUT_SECONDS),
        "LOG_LEVEL": "INFO",
        **extra,
    }


class NpsProcess:
    """One `nps ...` process; a thread reads its log as it comes, so the pipe never fills."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [*NPS, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self.worker_id: str | None = None
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(r"nps\.worker: worker (\S+) started", line)
            if found:
                self.worker_id = found[1]
                self._started.set()
        self._started.set()  # exited: nobody waits for ever

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_started(self, timeout: float = 60) -> None:
        if not self._started.wait(timeout):
            self.kill9()
            raise AssertionError(f"nps {self.args[0]} did not start within {timeout} s:\n{self.log[-3000:]}")

    def kill9(self) -> None:
        if self.running():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def finish(self, timeout: float) -> None:
        """Wait for the process to exit by itself; a hung one is killed and reported."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(
                f"nps {self.args[0]} hung: still running after {timeout} s, killed:\n{self.log[-3000:]}"
            ) from None
        self._reader.join(timeout=10)
        assert self.process.returncode == 0, (
            f"nps {self.args[0]} exited {self.process.returncode}:\n{self.log[-3000:]}"
        )

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then wait; a process that does not stop in time is killed and reported."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(
                f"nps {self.args[0]} did not stop within {timeout} s after SIGTERM; killed"
            ) from None


class Processes:
    """The processes a test started; any still running at its end are killed."""

    def __init__(self) -> None:
        self.started: list[NpsProcess] = []

    def worker(self, env: dict[str, str], *, exit_when_idle: bool = True) -> NpsProcess:
        worker = NpsProcess(["worker", *(["--exit-when-idle"] if exit_when_idle else [])], env)
        self.started.append(worker)
        return worker

    def serve(self, env: dict[str, str], *, scheduler: bool = True) -> tuple[NpsProcess, str]:
        """`nps serve` on a free port, once its /healthz answers; the process and its base URL."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        args = ["serve", "--port", str(port), *([] if scheduler else ["--no-scheduler"])]
        server = NpsProcess(args, {**env, "HOST": "127.0.0.1", "PUBLIC_BASE_URL": base})
        self.started.append(server)
        wait_until(lambda: _answers(base) or not server.running(), timeout=60, what="nps serve to answer")
        assert server.running(), f"nps serve exited:\n{server.log[-3000:]}"
        return server, base

    def kill_all(self) -> None:
        for process in self.started:
            if process.running():
                process.kill9()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.1) -> float:
    """Poll `condition` until true; seconds it took. AssertionError naming `what` on timeout."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - start


# --- the outbox ----------------------------------------------------------------------------------------------


def settings_for(database_url: str, fake: FakeTwilio | str) -> Settings:
    return Settings(
        database_url=database_url,
        twilio_account_sid=DEFAULT_ACCOUNT_SID,
        twilio_auth_token=DEFAULT_AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_api_url=fake if isinstance(fake, str) else fake.url,
        send_rate=1000,
        send_concurrency=8,
        claim_timeout_seconds=CLAIM_TIMEOUT_SECONDS,
    )


def prepare_outbox(database_url: str, fake: FakeTwilio, count: int, *, first: int = 0) -> Container:
    """`count` contacts, each with one SMS invitation due now by the real clock; a container on the real now.

    The window closes at 23:59 wall time: a zone whose clock reads about noon keeps the test far from it.
    """
    now = datetime.now(UTC)
    db = Database.connect(database_url)
    container = build_container(settings_for(database_url, fake), db=db, clock=ManualClock(now))
    rows = [
        {"external_id": f"c{i}", "name": f"Person {i}", "phone": phone(i)}
        for i in range(first, first + count)
    ]
    for start in range(0, len(rows), 1000):
        add_contacts(container, rows[start : start + 1000])
    apply_yaml(container, CAMPAIGN.replace("ZONE", f"Etc/GMT{now.hour - 12:+d}"))
    planned = plan(container).planned
    assert planned == count, f"planned {planned} of {count}"
    return container


def states(db: Database) -> Counter[str]:
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT state, count(*) FROM invitations GROUP BY state")).all()
    return Counter({str(state): int(n) for state, n in rows})


def pending(db: Database) -> int:
    counts = states(db)
    return sum(counts[s] for s in PENDING_STATES)


def claimed_by(db: Database, owners: Iterable[str]) -> int:
    """Rows still claimed by these worker ids."""
    with db.transaction() as session:
        query = select(func.count()).where(Invitation.state == "claimed", Invitation.owner.in_(list(owners)))
        return int(session.scalar(query.select_from(Invitation)) or 0)


def expire_claims(db: Database, owners: Iterable[str] | None = None) -> int:
    """The fast clock for dead workers: their claims are made older than the claim timeout, as if it had passed.

    Only rows still claimed (by `owners`, or by anyone when None) move; rows claimed by a live process must not.
    A claim moves back only as far as the timeout needs (to just past it, never later than it was), because
    the rest of its story keeps the wall clock: its messages were written after the claim, and Twilio dated
    them when they arrived, within the claim's window that reconciliation searches. Moved further (an hour
    back, as this once did), Twilio's log no longer has the sends inside the claim's window, and every send a
    dead worker made looks like one that never went out: reconciliation then rightly texts it again.
    """
    cutoff = datetime.now(UTC) - timedelta(seconds=CLAIM_TIMEOUT_SECONDS + 5)
    conditions = [Invitation.state == "claimed", Invitation.claimed_at > cutoff]
    if owners is not None:
        conditions.append(Invitation.owner.in_(list(owners)))
    with db.transaction() as session:
        already = session.scalar(
            select(func.count())
            .select_from(Invitation)
            .where(Invitation.state == "claimed", Invitation.claimed_at <= cutoff, *conditions[2:])
        )
        moved = session.execute(
            update(Invitation)
            .where(*conditions)
            .values(claimed_at=cutoff)
            .execution_options(synchronize_session=False)
        )
        return int(moved.rowcount or 0) + int(already or 0)


@dataclass(frozen=True)
class Outcome:
    """Each invitation's end, judged against what the fake Twilio's message log holds."""

    total: int
    texted_twice: int
    lost: int
    listed: int
    failed_though_texted: int
    states: Counter[str]
    examples: list[str]

    def summary(self) -> str:
        return (
            f"{self.total} invitations, {self.texted_twice} texted twice, {self.lost} lost, "
            f"{self.listed} listed (review, or failed with a reason)"
        )


def outcome(db: Database, fake: FakeTwilio) -> Outcome:
    """Texted twice: numbers with more than one accepted message. Lost: an invitation not settled (planned,
    claimed), marked sent though Twilio has nothing for it, or ended anywhere else without a reason. Listed:
    review / failed / undeliverable with a reason."""
    texted = Counter(message.to for message in fake.messages())
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT i.id, i.state, i.last_error, c.phone FROM invitations i "
                "JOIN contacts c ON c.id = i.contact_id"
            )
        ).all()
    lost, listed, failed_texted, examples = 0, 0, 0, []
    for row_id, state, reason, number in rows:
        state = str(state)
        if state in SENT_STATES and texted[number] >= 1:
            continue
        if state in LISTED_STATES and reason:
            listed += 1
            if state != "review" and texted[number]:
                failed_texted += 1
                examples.append(f"invitation {row_id} {state} but texted: {reason}")
            continue
        lost += 1
        if len(examples) < 5:
            examples.append(
                f"invitation {row_id} lost: state {state}, texted {texted[number]}x, reason {reason!r}"
            )
    twice = [number for number, n in texted.items() if n > 1]
    examples += [f"{number} texted {texted[number]}x" for number in twice[:5]]
    return Outcome(
        total=len(rows),
        texted_twice=len(twice),
        lost=lost,
        listed=listed,
        failed_though_texted=failed_texted,
        states=states(db),
        examples=examples,
    )
