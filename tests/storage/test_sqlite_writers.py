"""SQLite's one write lock under a steady stream of writers: every writer of the process gets its turn.

SQLite lets a writer that finds the lock taken sleep and try again until its busy timeout; it does not queue. A
writer that keeps coming back (the scheduler dispatching a campaign, batch after batch) wins nearly every try,
and a reply's webhook waiting beside it could lose them all for 5 s: "database is locked", a 503 to Twilio.
storage/db.py queues the process's writers in arrival order; these tests hold it to that, and check that what
does not write (reads, probes) never waits in that queue and that a give-up still reads as "database is locked".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from storage.bounded import bounded_reads, timed_out
from storage.db import Database
from storage.enums import InboundState
from storage.tables import Invitation, Message
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.twilio_webhooks import inbound_sms_params, new_message_sid, post_signed

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""
ANA = "+4915112345678"
ASK_REASON = "What do you like most"  # the question a promoter (9) is asked
BATCH_UNDER_LOCK = 0.05  # seconds a stand-in dispatch batch keeps the write lock: its claim, its bookkeeping


class BusyScheduler:
    """A stand-in for the scheduler dispatching a big campaign: write transactions back to back, each holding the
    write lock a while (its statements, the GIL shared with the web threads), from a thread of the same process."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.committed = 0
        self.errors: list[BaseException] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._container.db.transaction() as session:
                    session.execute(update(Invitation).values(updated_at=self._container.clock.now()))
                    time.sleep(BATCH_UNDER_LOCK)
                self.committed += 1
            except OperationalError as error:  # pragma: no cover - what the test fails on if it happens
                self.errors.append(error)

    def __enter__(self) -> BusyScheduler:
        self._thread.start()
        while self.committed == 0 and not self.errors:  # writing for good before the test goes on
            time.sleep(0.001)
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def surveyed(engine: Container, dispatcher: Dispatcher) -> None:
    add_contacts(engine, [{"external_id": "ana", "name": "Ana Lima", "phone": ANA}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == 1


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_reply_arriving_while_the_scheduler_writes_batch_after_batch_is_answered(
    engine: Container, app: TestClient, surveyed: None
) -> None:
    sid = new_message_sid()
    with BusyScheduler(engine) as scheduler:
        answer = post_signed(
            app,
            f"{PUBLIC_URL}/twilio/sms",
            inbound_sms_params(ANA, FROM_NUMBER, "9", sid),
            DEFAULT_AUTH_TOKEN,
        )
        committed_meanwhile = scheduler.committed
    assert answer.status_code == 200
    assert ASK_REASON in answer.text
    with engine.db.transaction() as session:
        state = session.scalar(select(Message.inbound_state).where(Message.provider_id == sid))
    assert state is InboundState.PROCESSED
    # The scheduler was not stopped to let the reply through.
    assert scheduler.errors == [] and committed_meanwhile > 1


@pytest.fixture
def scratch(sqlite_db: Database) -> Iterator[Database]:
    with sqlite_db.transaction() as session:
        session.execute(text("CREATE TABLE scratch (id INTEGER PRIMARY KEY, note TEXT NOT NULL)"))
    yield sqlite_db


@pytest.fixture
def other_writer(scratch: Database) -> Iterator[Any]:
    """Another connection holding SQLite's write lock (as a second process would), released afterwards."""
    with scratch.engine.connect() as connection:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        connection.exec_driver_sql("INSERT INTO scratch (note) VALUES ('other')")
        try:
            yield connection
        finally:
            connection.exec_driver_sql("ROLLBACK")


def test_reads_probes_and_scrapes_go_on_while_another_connection_holds_the_write_lock(
    scratch: Database, other_writer: Any
) -> None:
    with scratch.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    assert scratch.is_reachable()
    with bounded_reads(scratch, timedelta(milliseconds=200)) as bounded, bounded.transaction() as session:
        assert session.scalar(text("SELECT count(*) FROM scratch")) == 0  # its uncommitted row unseen


def test_a_writer_that_waited_its_busy_timeout_fails_as_locked_and_the_next_one_gets_the_lock(
    scratch: Database,
) -> None:
    holder_wrote, holder_may_end = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with scratch.transaction() as session:
            session.execute(text("INSERT INTO scratch (note) VALUES ('holder')"))
            holder_wrote.set()
            holder_may_end.wait()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    holder_wrote.wait()
    try:
        with pytest.raises(OperationalError) as refused, scratch.engine.begin() as connection:
            connection.exec_driver_sql("PRAGMA busy_timeout=100")
            connection.exec_driver_sql("INSERT INTO scratch (note) VALUES ('impatient')")
    finally:
        holder_may_end.set()
        holder.join()
    assert timed_out(refused.value)  # the webhook's 503 and the probes' give-up tell it from a failure
    with scratch.transaction() as session:
        session.execute(text("INSERT INTO scratch (note) VALUES ('next')"))
    with scratch.transaction() as session:
        notes = session.scalars(text("SELECT note FROM scratch ORDER BY id")).all()
    assert notes == ["holder", "next"]


def test_a_write_that_failed_gives_its_turn_back(scratch: Database) -> None:
    with pytest.raises(IntegrityError), scratch.transaction() as session:
        session.execute(text("INSERT INTO scratch (note) VALUES (NULL)"))
    with scratch.engine.connect() as connection:  # ended without commit or rollback: closed
        connection.exec_driver_sql("INSERT INTO scratch (note) VALUES ('dropped')")
    impatient = Database.connect(str(scratch.engine.url))
    try:
        with impatient.engine.begin() as connection:  # another engine on the file: the same queue
            connection.exec_driver_sql("PRAGMA busy_timeout=100")
            connection.exec_driver_sql("INSERT INTO scratch (note) VALUES ('kept')")
    finally:
        impatient.dispose()
    with scratch.transaction() as session:
        assert session.scalars(text("SELECT note FROM scratch")).all() == ["kept"]


def test_a_transaction_that_reads_then_writes_after_another_commit_still_writes(scratch: Database) -> None:
    """pysqlite opens the transaction at the first write, not at the read before it: the read takes no snapshot
    that another connection's commit could make stale (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out).
    Kept so: a BEGIN of our own at the first statement would need to be BEGIN IMMEDIATE, for reads as well."""
    with scratch.transaction() as session:
        assert session.scalar(text("SELECT count(*) FROM scratch")) == 0
        with scratch.transaction() as other:
            other.execute(text("INSERT INTO scratch (note) VALUES ('other')"))
        session.execute(text("INSERT INTO scratch (note) VALUES ('ours')"))
    with scratch.transaction() as session:
        assert session.scalars(text("SELECT note FROM scratch ORDER BY id")).all() == ["other", "ours"]
