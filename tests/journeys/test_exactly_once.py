"""Exactly once across processes: workers sharing the outbox never send twice, and a worker killed mid-batch is
settled from the provider's log without a second message.

The workers are real `nps worker --exit-when-idle` processes on the system clock, so the outbox is planned at the
real "now". The fake Twilio records a send when it arrives, before it answers: a killed worker leaves sends the
provider has and the worker never heard about. PostgreSQL cases need TEST_DATABASE_URL (`db` marks them).
The last test covers a worker slower than the claim timeout: it hands unsent claims back instead of sending.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from campaigns.channels.base import Outgoing
from campaigns.clock import ManualClock
from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container, build_container
from service.settings import Settings
from storage.db import Database
from storage.enums import Channel, InvitationState, SendState
from storage.tables import Contact, Invitation, Message
from tests.fixtures.engine import FROM_NUMBER, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, SEND, FakeTwilio

ROOT = Path(__file__).resolve().parents[2]
# `nps worker` run from this checkout (cwd first on sys.path), whatever the venv has installed.
WORKER = [
    sys.executable,
    "-c",
    "from service.cli import main; main()",
    "--env-file",
    os.devnull,
    "worker",
]
CONCURRENCY = 8
RECONCILED = "completed from the provider's log after the worker stopped"
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


class Worker:
    """An `nps worker --exit-when-idle` process; a thread reads its log as it comes, so the pipe never fills."""

    def __init__(self, settings: Settings) -> None:
        env = {
            "DATABASE_URL": settings.database_url,
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_URL": settings.twilio_api_url,
            "NPS_SEND_RATE": str(settings.send_rate),
            "NPS_SEND_CONCURRENCY": str(settings.send_concurrency),
            "LOG_LEVEL": "INFO",
        }
        self.process = subprocess.Popen(
            [*WORKER, "--exit-when-idle"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.started = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if "nps.worker: worker " in line:  # "worker <id> started", logged before its first query
                self.started.set()
        self.started.set()  # exited: nobody waits for ever

    def finish(self) -> str:
        """Wait for the worker to go idle and exit; its log."""
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        log = "".join(self.lines)
        assert self.process.returncode == 0, log
        return log


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Workers a test starts; any still running at its end (a failure) are killed."""
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


def prepare_outbox(db: Database, database_url: str, fake: FakeTwilio, count: int) -> Settings:
    """`count` contacts, each with one SMS invitation due now by the real clock; the workers' settings."""
    settings = Settings(
        database_url=database_url,
        twilio_account_sid=DEFAULT_ACCOUNT_SID,
        twilio_auth_token=DEFAULT_AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_api_url=fake.url,
        send_rate=1000,
        send_concurrency=CONCURRENCY,
    )
    now = datetime.now(UTC)
    container = build_container(settings, db=db, clock=ManualClock(now))
    contacts = [
        {"external_id": f"c{i}", "name": f"Person {i}", "phone": f"+4915120{i:06d}"} for i in range(count)
    ]
    add_contacts(container, contacts)
    # The window closes at 23:59 wall time: a zone whose clock reads about noon keeps the test far from it.
    apply_yaml(container, CAMPAIGN.replace("ZONE", f"Etc/GMT{now.hour - 12:+d}"))
    assert plan(container).planned == count
    return settings


def claimed_in(log: str) -> int:
    return sum(int(n) for n in re.findall(r"surveys: (\d+) due", log))


def states(db: Database) -> dict[InvitationState, int]:
    with db.transaction() as session:
        return dict(session.execute(select(Invitation.state, func.count()).group_by(Invitation.state)).all())


def sends_per_number(fake: FakeTwilio) -> Counter[str]:
    return Counter(request.body["To"] for request in fake.requests(SEND))


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_two_workers_share_the_outbox_and_send_each_invitation_once(
    db: Database, database_url: str, fake_twilio: FakeTwilio, workers: list[Worker]
) -> None:
    settings = prepare_outbox(db, database_url, fake_twilio, 300)
    fake_twilio.set_latency(0.02)
    with db.engine.connect() as connection, connection.begin():
        # Both workers wait at their first query until both are up, so they really race for the same rows.
        connection.execute(text("LOCK TABLE invitations IN ACCESS EXCLUSIVE MODE"))
        workers += [Worker(settings), Worker(settings)]
        for worker in workers:
            assert worker.started.wait(timeout=120)  # a loaded CI machine starts Python slowly
    logs = [worker.finish() for worker in workers]

    sends = sends_per_number(fake_twilio)
    assert fake_twilio.count() == 300
    assert len(sends) == 300 and set(sends.values()) == {1}
    assert states(db) == {InvitationState.SENT: 300}
    claims = [claimed_in(log) for log in logs]
    assert all(claims) and sum(claims) == 300, claims  # both worked, and no row was claimed twice
    with db.transaction() as session:
        provider_ids = session.scalars(
            select(Message.provider_id).where(Message.send_state == SendState.SENT)
        ).all()
    assert Counter(provider_ids) == Counter(m.sid for m in fake_twilio.messages())


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_claim_skips_the_rows_another_claim_holds_instead_of_waiting_or_taking_them(
    db: Database, database_url: str, fake_twilio: FakeTwilio
) -> None:
    settings = prepare_outbox(db, database_url, fake_twilio, 10)
    # Waiting for a lock would fail after a second here rather than hang: the claim must not wait at all.
    impatient = make_url(database_url).update_query_dict({"options": "-c lock_timeout=1000"})
    other = Database.connect(impatient.render_as_string(hide_password=False))
    dispatcher = build_container(settings, db=other).new_dispatcher("second")
    try:
        with db.engine.connect() as connection, connection.begin():  # a first claim, not committed yet
            query = "SELECT id FROM invitations ORDER BY due_at, id LIMIT 4 FOR UPDATE"
            held = set(connection.execute(text(query)).scalars())
            claimed = set(dispatcher._claim())
    finally:
        dispatcher.close()
        other.dispose()
    assert len(held) == 4 and len(claimed) == 6 and not held & claimed


def test_a_worker_killed_mid_batch_is_settled_from_the_providers_log_without_a_second_message(
    db: Database, database_url: str, fake_twilio: FakeTwilio, workers: list[Worker]
) -> None:
    settings = prepare_outbox(db, database_url, fake_twilio, 200)
    fake_twilio.set_latency(0.5)
    workers.append(worker := Worker(settings))
    # Three full rounds of CONCURRENCY sends: the kill lands while every sender waits for its answer, so no
    # request is half-way to the fake (it would be recorded after the reconciliation looked).
    fake_twilio.wait_for(3 * CONCURRENCY, timeout=30)
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(timeout=10)
    arrived = set(sends_per_number(fake_twilio))
    assert len(arrived) >= 20
    assert states(db)[InvitationState.CLAIMED] > len(arrived)  # some claims never reached the fake either

    fake_twilio.set_latency(0)
    # Past the claim timeout, on a clock of our own rather than by sleeping.
    later = datetime.now(UTC) + timedelta(seconds=settings.claim_timeout_seconds, minutes=1)
    dispatcher = build_container(settings, db=db, clock=ManualClock(later)).new_dispatcher("recovery")
    try:
        dispatcher.drain()
    finally:
        dispatcher.close()

    sends = sends_per_number(fake_twilio)
    assert len(sends) == 200 and set(sends.values()) == {1}, [n for n, c in sends.items() if c > 1]
    assert states(db) == {InvitationState.SENT: 200}
    with db.transaction() as session:
        reconciled = session.scalars(
            select(Contact.phone).join(Invitation).where(Invitation.last_error == RECONCILED)
        ).all()
        sent_messages = session.scalar(select(func.count()).where(Message.send_state == SendState.SENT))
    assert set(reconciled) == arrived  # exactly those the provider had, completed without a resend
    assert sent_messages == 200


def test_a_worker_slower_than_the_claim_timeout_does_not_repeat_what_another_worker_resent(
    engine: Container, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [{"external_id": f"c{i}", "phone": f"+4915120{i:06d}"} for i in range(10)])
    apply_yaml(
        engine, "campaigns:\n  - {name: pulse, kind: relationship, interval_days: 1, channels: [sms]}\n"
    )
    plan(engine)
    twilio, clock, other = engine.transports[Channel.SMS], engine.clock, engine.new_dispatcher("other")
    stale_at = clock.now() + engine.dispatch_config().claim_timeout

    class SlowTwilio:  # each send takes two minutes of the test clock
        channel, name, find_sent = Channel.SMS, "twilio", twilio.find_sent

        def send(self, message: Outgoing) -> str:
            sid = twilio.send(message)
            before = clock.now()
            if before <= stale_at < clock.advance(minutes=2):  # type: ignore[attr-defined]
                other.drain()  # our claims just went stale: another worker settles and re-sends them
            return sid

    config = replace(engine.dispatch_config(), concurrency=1)
    slow = Dispatcher(engine.db, {Channel.SMS: SlowTwilio()}, clock=clock, config=config, worker_id="slow")
    try:
        slow.drain(max_batches=1)
        other.drain()  # whatever the slow worker handed back
    finally:
        slow.close()
        other.close()
    sends = sends_per_number(fake_twilio)
    assert len(sends) == 10 and set(sends.values()) == {1}, sends


def test_a_worker_told_to_stop_finishes_its_batch_and_leaves_the_rest_of_the_outbox_planned(
    db: Database, database_url: str, fake_twilio: FakeTwilio, workers: list[Worker]
) -> None:
    # 20 sends a second: the 600 due would take the worker half a minute, its batch a few seconds.
    settings = replace(prepare_outbox(db, database_url, fake_twilio, 600), send_rate=20)
    batch = build_container(settings, db=db).dispatch_config().batch_size
    workers.append(worker := Worker(settings))
    fake_twilio.wait_for(1, timeout=120)
    worker.process.send_signal(signal.SIGTERM)  # a deploy, or `systemctl stop`
    log = worker.finish()

    sent = fake_twilio.count()
    assert "stopping after the current batch (SIGTERM)" in log
    # None left claimed: the rest is planned, for the next worker to send.
    assert states(db) == {InvitationState.SENT: sent, InvitationState.PLANNED: 600 - sent}
    assert 0 < sent <= batch < 600
    assert claimed_in(log) == sent
