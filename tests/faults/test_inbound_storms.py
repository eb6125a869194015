"""Inbound SMS under faults, against a real `nps serve`: signed POSTs to /twilio/sms, as Twilio sends them.

- PostgreSQL stopped and restarted during a storm: anything not committed is answered 503 (Twilio retries it),
  never 200; every message answered 200 is stored and handled; the service recovers by itself.
- A storm while `nps serve` reconciles stale claims against a slow Twilio log: no errors, every message stored,
  every answer inside Twilio's 15 s webhook timeout.
- The same MessageSid posted 10 times at once: one conversation step, its answer given once (and to at most one
  copy after that, taken for Twilio's retry).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from storage.db import Database
from storage.enums import Direction
from storage.tables import Message, Response
from tests.faults.harness import (
    Processes,
    expire_claims,
    figure,
    nps_env,
    pending,
    phone,
    prepare_outbox,
    size,
    states,
    wait_until,
)
from tests.faults.slow_proxy import SlowLogProxy
from tests.fixtures.engine import FROM_NUMBER
from tests.fixtures.own_postgres import PostgresServer
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, SEND, FakeTwilio
from tests.standins.twilio_webhooks import inbound_sms_params, new_message_sid, post_signed

pytestmark = pytest.mark.faults

TWILIO_WEBHOOK_TIMEOUT = 15.0


@dataclass(frozen=True)
class Answer:
    sid: str
    sender: str
    body: str
    status: int | str  # the HTTP status, or the name of the error when there was no answer
    seconds: float
    ended: float  # time.monotonic() when the answer came
    text: str


def post_sms(base: str, sender: str, body: str, sid: str | None = None) -> Answer:
    """One inbound SMS as Twilio posts it (a retry is the same sid, sender and body)."""
    sid = sid or new_message_sid()
    params = inbound_sms_params(sender, FROM_NUMBER, body, sid)
    start = time.monotonic()
    try:
        with httpx.Client(base_url=base, timeout=TWILIO_WEBHOOK_TIMEOUT + 5) as client:
            reply = post_signed(client, f"{base}/twilio/sms", params, DEFAULT_AUTH_TOKEN)
        status: int | str = reply.status_code
        text = reply.text
    except httpx.HTTPError as error:
        status, text = type(error).__name__, ""
    end = time.monotonic()
    return Answer(sid, sender, body, status, end - start, end, text)


def retry(base: str, answer: Answer) -> Answer:
    return post_sms(base, answer.sender, answer.body, answer.sid)


def surveyed(database_url: str, fake: FakeTwilio, count: int) -> Database:
    """`count` contacts, each texted one invitation (by a dispatcher here, before any process starts)."""
    container = prepare_outbox(database_url, fake, count)
    dispatcher = container.new_dispatcher("setup")
    try:
        assert dispatcher.drain().sent == count
    finally:
        dispatcher.close()
    return container.db


def inbound(db: Database) -> dict[str, str]:
    """Stored inbound SMS: MessageSid -> status."""
    with db.transaction() as session:
        rows = session.execute(
            select(Message.provider_id, Message.inbound_state).where(Message.direction == Direction.INBOUND)
        ).all()
    return {str(sid): str(status) for sid, status in rows}


# --- PostgreSQL stopped and restarted ----------------------------------------------------------------------

STORM = size("STORM_MESSAGES", 600, 200)
DOWN_SECONDS = size("STORM_DOWN_SECONDS", 10, 5)
SENDERS = 20
RETRY_FOR = 60.0


def test_postgresql_stopped_and_restarted_during_an_inbound_storm_answers_503_loses_nothing_and_recovers(
    stoppable_postgres: PostgresServer, fake_twilio: FakeTwilio, processes: Processes
) -> None:
    url = stoppable_postgres.new_database()
    db = surveyed(url, fake_twilio, SENDERS)
    _, base = processes.serve(nps_env(url, fake_twilio.url))
    answers: list[Answer] = []
    lock = threading.Lock()
    posted = threading.Semaphore(0)
    # A third of the storm before the stop, a third while PostgreSQL is down, a third after it is back.
    down, up = threading.Event(), threading.Event()
    gates = [None, down, up]

    def sender(n: int) -> None:
        for i in range(n, STORM, SENDERS):  # each sender's messages one after another, as a person types
            gate = gates[min(2, 3 * i // STORM)]
            if gate is not None:
                assert gate.wait(timeout=120), "the storm's next phase never came"
            answer = post_sms(base, phone(n), "9" if i < SENDERS else f"comment {i}")
            with lock:
                answers.append(answer)
            posted.release()
            time.sleep(0.05)

    down_at = up_at = 0.0
    with ThreadPoolExecutor(SENDERS) as pool:
        futures = [pool.submit(sender, n) for n in range(SENDERS)]
        for _ in range(sum(1 for i in range(STORM) if 3 * i < STORM)):
            assert posted.acquire(timeout=60), "the storm stalled before the stop"
        stoppable_postgres.stop("immediate")
        down_at = time.monotonic()
        down.set()
        time.sleep(DOWN_SECONDS)
        stoppable_postgres.start()
        up_at = time.monotonic()
        up.set()
        for future in futures:
            future.result(timeout=300)

    first = {a.sid: a for a in answers}
    acknowledged = {sid for sid, a in first.items() if a.status == 200}
    answered_503 = sum(1 for a in first.values() if a.status == 503)
    wrong = Counter(str(a.status) for a in first.values() if a.status not in (200, 503))
    after_restart = [a for a in answers if a.ended > up_at]

    # Twilio retries what was not answered 200: so does this test, for a while.
    deadline = time.monotonic() + RETRY_FOR
    unanswered = [a for a in first.values() if a.status != 200]
    retries = 0
    while unanswered and time.monotonic() < deadline:
        again = [retry(base, a) for a in unanswered]
        after_restart += again
        retries += len(again)
        acknowledged |= {a.sid for a in again if a.status == 200}
        unanswered = [a for a in again if a.status != 200]
        if unanswered:
            time.sleep(1)

    back = [a.ended - up_at for a in after_restart if a.status == 200]
    recovered = f"{min(back):.1f} s" if back else "never"
    lost = sorted(acknowledged - set(inbound(db)))
    with contextlib.suppress(AssertionError):  # what is still unhandled then is counted below
        wait_until(
            lambda: all(inbound(db).get(sid) == "processed" for sid in acknowledged),
            timeout=30,
            what="every acknowledged message to be handled",
            every=0.5,
        )
    handled = inbound(db)
    unhandled = sum(1 for sid in acknowledged if handled.get(sid, "processed") != "processed")
    figure(
        f"postgres stopped {DOWN_SECONDS} s during {STORM} inbound SMS: {answered_503} answered 503, "
        f"{sum(wrong.values())} answered otherwise {dict(wrong)}, {len(lost)} acknowledged but lost, "
        f"{unhandled} stored but never handled, {len(unanswered)} still refused after {retries} retries, "
        f"first 200 {recovered} after the restart, down {up_at - down_at:.1f} s"
    )
    assert not wrong, wrong
    assert not lost, lost[:5]
    assert not unanswered, [(a.sid, a.status) for a in unanswered][:5]
    assert unhandled == 0
    assert back, "no 200 after the restart"


# --- a storm while reconciliation runs -------------------------------------------------------------------

STALE = size("RECONCILE_CLAIMS", 100, 100)
INBOUND = size("RECONCILE_INBOUND", 200, 200)
LOG_READ_SECONDS = 0.15  # each look into Twilio's log: 100 of them make a 15 s reconciliation
IN_FLIGHT_SECONDS = 5.0


def test_inbound_sms_posted_while_nps_serve_reconciles_stale_claims_against_a_slow_twilio_are_all_stored(
    sqlite_db: Database, fake_twilio: FakeTwilio, processes: Processes
) -> None:
    url = sqlite_db.engine.url.render_as_string(hide_password=False)
    db = prepare_outbox(url, fake_twilio, STALE).db
    # A worker sends every claim at once and is killed while Twilio holds the answers: STALE claims, each with
    # a message Twilio has, that only its log can settle.
    env = nps_env(url, fake_twilio.url)
    fake_twilio.set_latency(IN_FLIGHT_SECONDS)
    worker = processes.worker({**env, "NPS_SEND_CONCURRENCY": str(STALE)})
    fake_twilio.wait_for(STALE, timeout=60)
    worker.kill9()
    fake_twilio.set_latency(0)
    assert states(db)["claimed"] == STALE
    expire_claims(db)

    with SlowLogProxy(fake_twilio.url, LOG_READ_SECONDS) as proxy:
        _, base = processes.serve({**env, "TWILIO_API_URL": proxy.url})
        wait_until(lambda: proxy.log_reads > 0, timeout=60, what="nps serve to start reconciling")
        people = [phone(i) for i in range(STALE)] + [phone(10_000 + i) for i in range(INBOUND - STALE)]
        with ThreadPoolExecutor(20) as pool:
            answers = list(
                pool.map(
                    lambda n: post_sms(base, people[n % len(people)], "9" if n < len(people) else "ok"),
                    range(INBOUND),
                )
            )
        reads_during = proxy.log_reads
        wait_until(lambda: pending(db) == 0, timeout=120, what="the reconciliation to finish", every=0.5)

    errors = Counter(str(a.status) for a in answers if a.status != 200)
    stored = inbound(db)
    missing = [a.sid for a in answers if a.sid not in stored]
    slowest = max(a.seconds for a in answers)
    twice = sum(1 for n in Counter(r.body["To"] for r in fake_twilio.requests(SEND)).values() if n > 1)
    figure(
        f"reconcile {STALE} stale claims (log reads {LOG_READ_SECONDS} s each) vs {INBOUND} inbound SMS "
        f"(SQLite): {sum(errors.values())} errors {dict(errors)}, {INBOUND - len(missing)} stored, slowest "
        f"answer {slowest:.1f} s, {reads_during} of the log reads done while the storm ran, {twice} texted twice"
    )
    assert not errors, errors
    assert not missing, missing[:5]
    assert slowest < TWILIO_WEBHOOK_TIMEOUT
    assert twice == 0


# --- the same MessageSid, ten times at once ----------------------------------------------------------------

DUPLICATES = 10


def test_the_same_message_sid_posted_ten_times_at_once_is_one_conversation_step_and_one_reply(
    database_url: str, fake_twilio: FakeTwilio, processes: Processes
) -> None:
    db = surveyed(database_url, fake_twilio, 1)
    _, base = processes.serve(nps_env(database_url, fake_twilio.url), scheduler=False)
    sid, person = new_message_sid(), phone(0)
    together = threading.Barrier(DUPLICATES)

    def deliver(_: int) -> Answer:
        together.wait(timeout=30)
        return post_sms(base, person, "6", sid)

    with ThreadPoolExecutor(DUPLICATES) as pool:
        answers = list(pool.map(deliver, range(DUPLICATES)))
    statuses = Counter(str(a.status) for a in answers)
    replies = sum(1 for a in answers if "<Message>" in a.text)
    with db.transaction() as session:
        steps = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.direction == Direction.OUTBOUND,
                Message.address == person,
                Message.purpose != "invitation",
            )
        )
        responses = session.scalar(select(func.count()).select_from(Response))
    figure(
        f"same MessageSid x{DUPLICATES} at once ({db.engine.dialect.name}): {steps} conversation steps, "
        f"{replies} replies, {responses} responses, answers {dict(statuses)}"
    )
    assert steps == 1
    # The request that committed the step answers; one copy arriving after that commit may take the answer for
    # Twilio's retry (campaigns.replies.inbound): Twilio reads only the request it still waits on.
    assert 1 <= replies <= 2
    assert responses == 1
    assert all(a.status in (200, 503) for a in answers), statuses
