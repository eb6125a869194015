"""The Twilio webhooks over HTTP: one handling per MessageSid, 503 for anything not committed, and the sweeper.

Twilio retries a webhook only when it got no answer it could use; it does not retry a 500 by default. So:
whatever was not committed is answered 503 (Twilio retries it), a message is handled by exactly one request (a
claim on its row), a retry of a message whose answer reached Twilio in time is answered with silence. A stored
message whose handling failed is handled by the sweeper, which texts the answer through the REST API; so is an
answer ready too late for Twilio's 15 s webhook timeout, unless Twilio's retry of that message takes it first.
Slow handling is a statement held (`held`) while the app's clock moves on: no test sleeps.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update

from campaigns.channels.base import Outgoing, Transport
from campaigns.dispatch.dispatcher import Dispatcher, DispatchStats
from campaigns.replies.inbound import (
    ANSWER_IN_TWIML_WITHIN,
    TwimlAnswer,
    claim_reply,
    handle_claimed,
    mark_late,
    new_owner,
    store_reply,
    sweep_inbound,
)
from service.container import Container
from service.scheduler import Ticker
from storage.db import Database
from storage.enums import Channel, Direction, InboundState, InvitationState, SendState
from storage.tables import Invitation, Message, Response
from tests.fixtures.databases import held
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.twilio_webhooks import (
    inbound_sms_params,
    new_message_sid,
    post_and_hang_up,
    post_signed,
    post_unsigned,
    sign_twilio_request,
    status_callback_params,
)

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
SMS_URL = f"{PUBLIC_URL}/twilio/sms"
STATUS_URL = f"{PUBLIC_URL}/twilio/status"
ASK_REASON = "What do you like most"  # the question a promoter (9) is asked


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    from service.web.app import create_app

    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def surveyed(engine: Container, dispatcher: Dispatcher) -> None:
    add_contacts(engine, [{"external_id": "ana", "name": "Ana Lima", "phone": ANA}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == 1


def post(app: TestClient, body: str, sid: str) -> Any:
    return post_signed(app, SMS_URL, inbound_sms_params(ANA, FROM_NUMBER, body, sid), DEFAULT_AUTH_TOKEN)


def conversation_steps(db: Database) -> list[tuple[str, SendState | None]]:
    """What we answered Ana after her survey: (text, how it went out)."""
    with db.transaction() as session:
        rows = session.execute(
            select(Message.body, Message.send_state)
            .where(Message.direction == Direction.OUTBOUND, Message.purpose != "invitation")
            .order_by(Message.id)
        ).all()
    return [(str(body), state) for body, state in rows]


def inbound_states(db: Database) -> list[InboundState | None]:
    with db.transaction() as session:
        return list(
            session.scalars(
                select(Message.inbound_state)
                .where(Message.direction == Direction.INBOUND)
                .order_by(Message.id)
            )
        )


def response_count(db: Database) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Response)) or 0


@contextmanager
def table_away(db: Database, table: str) -> Iterator[None]:
    """A database fault for one table: renamed away by another connection, then restored."""
    with db.engine.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        yield
    finally:
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"ALTER TABLE {table}_away RENAME TO {table}")


# --- 503 for anything not committed ------------------------------------------------------------------------


def test_a_database_that_cannot_store_the_message_is_a_503_without_a_trace(
    engine: Container, app: TestClient, surveyed: None
) -> None:
    sid = new_message_sid()
    with table_away(engine.db, "messages"):
        refused = post(app, "9", sid)
        callback = status_callback_params(new_message_sid(), "delivered", ANA, FROM_NUMBER)
        refused_callback = post_signed(app, STATUS_URL, callback, DEFAULT_AUTH_TOKEN)
    assert (refused.status_code, refused_callback.status_code) == (503, 503)
    for answer in (refused, refused_callback):
        assert "Traceback" not in answer.text and "sqlalchemy" not in answer.text.lower()
        assert "Retry-After" in answer.headers
    assert ASK_REASON in post(app, "9", sid).text  # Twilio's retry is handled as the first delivery
    assert response_count(engine.db) == 1


def test_a_handling_that_fails_is_a_503_and_the_retry_handles_the_stored_message(
    engine: Container, app: TestClient, surveyed: None
) -> None:
    sid = new_message_sid()
    with table_away(engine.db, "responses"):
        assert post(app, "9", sid).status_code == 503
    assert inbound_states(engine.db) == [InboundState.RECEIVED]  # stored, and free for the next attempt
    assert ASK_REASON in post(app, "9", sid).text
    assert inbound_states(engine.db) == [InboundState.PROCESSED]
    assert [step for step, _ in conversation_steps(engine.db)] == ["Thanks! What do you like most?"]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_sqlite_locked_by_another_writer_is_a_503(engine: Container, app: TestClient) -> None:
    with engine.db.engine.connect() as writer:
        writer.exec_driver_sql("BEGIN IMMEDIATE")  # holds SQLite's write lock past the busy timeout
        try:
            answer = post(app, "9", new_message_sid())
        finally:
            writer.exec_driver_sql("ROLLBACK")
    assert answer.status_code == 503


# --- one handling per MessageSid -------------------------------------------------------------------------


def test_a_duplicate_of_a_message_whose_handling_is_under_way_is_a_503_until_that_claim_is_stale(
    engine: Container, app: TestClient, surveyed: None
) -> None:
    """A request that claimed the message and died (or is still at it): nobody else handles it meanwhile."""
    sid = new_message_sid()
    with table_away(engine.db, "responses"):
        assert post(app, "9", sid).status_code == 503
    with engine.db.transaction() as session:  # what a process killed inside its handling leaves behind
        session.execute(
            update(Message)
            .where(Message.provider_id == sid)
            .values(inbound_state=InboundState.PROCESSING, claimed_by="killed", claimed_at=engine.clock.now())
        )
    assert post(app, "9", sid).status_code == 503
    engine.clock.advance(seconds=29)  # type: ignore[attr-defined]
    assert post(app, "9", sid).status_code == 503
    engine.clock.advance(seconds=2)  # type: ignore[attr-defined]
    assert ASK_REASON in post(app, "9", sid).text  # the dead claim is taken over
    assert response_count(engine.db) == 1 and len(conversation_steps(engine.db)) == 1


def test_ten_copies_posted_at_once_are_one_step_and_one_reply(
    engine: Container, app: TestClient, surveyed: None
) -> None:
    sid = new_message_sid()
    together = threading.Barrier(10)

    def deliver(_: int) -> Any:
        together.wait(timeout=10)
        return post(app, "6", sid)

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(deliver, range(10)))
    assert {a.status_code for a in answers} <= {200, 503}
    # The request that committed the step answers; a copy arriving after that commit is taken for Twilio's
    # retry (Twilio sends one only after giving up on the request before it, whose answer it then never reads)
    # and takes the answer once, a compare-and-set: the others are silent or 503.
    assert 1 <= sum("What could we do better" in a.text for a in answers) <= 2  # asked of a detractor (6)
    assert response_count(engine.db) == 1 and len(conversation_steps(engine.db)) == 1


def waiting_for_a_lock(db: Database) -> Callable[[], bool]:
    def check() -> bool:
        with db.engine.connect() as connection:
            return bool(
                connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                ).scalar()
            )

    return check


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_duplicate_arriving_while_the_first_waits_inside_its_handling_is_not_handled_again(
    engine: Container, app: TestClient, surveyed: None
) -> None:
    """The first delivery waits for the invitation's row lock (held here); its duplicate comes meanwhile.

    The first one's answer is then ready later than Twilio waits for a webhook, so it is not put in that TwiML
    (Twilio has hung up): the retry after it takes that stored answer, and the sweeper then has nothing to text.
    """
    sid = new_message_sid()
    with engine.db.engine.connect() as holder, ThreadPoolExecutor(2) as pool:
        holder.exec_driver_sql("BEGIN")
        holder.exec_driver_sql("SELECT id FROM invitations FOR UPDATE")
        try:
            first = pool.submit(post, app, "9", sid)
            wait_for(waiting_for_a_lock(engine.db), "the first delivery to wait for the invitation's lock")
            duplicate = pool.submit(post, app, "9", sid)
            wait_for(duplicate.done, "the duplicate to be answered while the first one waits")
            engine.clock.advance(seconds=20)  # type: ignore[attr-defined]  # past Twilio's 15 s webhook timeout
        finally:
            holder.exec_driver_sql("COMMIT")
        answered, duplicate = first.result(timeout=10), duplicate.result(timeout=10)
    assert duplicate.status_code == 503
    assert answered.status_code == 200 and ASK_REASON not in answered.text
    retried = post(app, "9", sid)
    assert retried.status_code == 200 and ASK_REASON in retried.text
    assert sweep_inbound(engine.db, engine.transports, clock=engine.clock) == 0
    assert response_count(engine.db) == 1 and len(conversation_steps(engine.db)) == 1


# --- the sweeper -----------------------------------------------------------------------------------------


def test_a_stored_reply_whose_handling_failed_is_answered_once_by_the_sweeper_over_rest(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    with table_away(engine.db, "responses"):
        assert post(app, "9", new_message_sid()).status_code == 503  # and Twilio does not retry
    transport = engine.transports
    assert sweep_inbound(engine.db, transport, clock=engine.clock) == 0  # too fresh: its request may be at it
    engine.clock.advance(seconds=31)  # type: ignore[attr-defined]
    assert sweep_inbound(engine.db, transport, clock=engine.clock) == 1
    assert sweep_inbound(engine.db, transport, clock=engine.clock) == 0
    _survey, answer = fake_twilio.messages()
    assert (answer.to, answer.body) == (ANA, "Thanks! What do you like most?")
    assert conversation_steps(engine.db) == [(answer.body, SendState.SENT)]
    assert inbound_states(engine.db) == [InboundState.PROCESSED]
    assert response_count(engine.db) == 1


# --- an answer too late for Twilio ------------------------------------------------------------------------

ASK = "Thanks! What do you like most?"
IN_HANDLING = "INSERT INTO responses"  # the conversation step records the score
TAKING_THE_ANSWER = "UPDATE messages SET send_state"  # a retry or the sweeper takes a late answer


def answers_texted(fake: FakeTwilio) -> list[tuple[str, str]]:
    """What reached Ana over the REST API after her survey: (to, body)."""
    _survey, *texted = fake.messages()
    return [(m.to, m.body) for m in texted]


def twiml_text(answer: Any) -> str | None:
    """The message a webhook answer asks Twilio to send, if any (Twilio's TwiML is XML)."""
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml")
    message = ElementTree.fromstring(answer.text).find("Message")
    return None if message is None else message.text


def post_slowly(engine: Container, app: TestClient, sid: str, seconds: float, sql: str, **hold: Any) -> Any:
    """Post Ana's "9" while the database makes `sql` wait until `seconds` passed on the app's clock."""
    with held(engine.db, sql, **hold) as statement, ThreadPoolExecutor(1) as pool:
        posted = pool.submit(post, app, "9", sid)
        statement.wait()
        engine.clock.advance(seconds=seconds)  # type: ignore[attr-defined]
        statement.release()
        return posted.result(timeout=10)


def sweep(engine: Container) -> int:
    return sweep_inbound(engine.db, engine.transports, clock=engine.clock)


@pytest.mark.parametrize("at_commit", [False, True], ids=["the handling waits", "its commit waits"])
def test_an_answer_committed_later_than_twilio_waits_reaches_the_person_once_over_rest(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio, at_commit: bool
) -> None:
    """Twilio drops a webhook answer after 15 s and does not retry: the TwiML goes nowhere, the sweeper texts it.

    13 s is past the 12 s the answer may take (the rest is for the way back to Twilio), so the webhook answers
    with empty TwiML: a Twilio still waiting must not send it as well.
    """
    answer = post_slowly(engine, app, new_message_sid(), 13, IN_HANDLING, at_commit=at_commit)
    assert twiml_text(answer) is None
    assert answers_texted(fake_twilio) == []
    assert sweep(engine) == 1
    assert sweep(engine) == 0
    engine.clock.advance(minutes=5)  # type: ignore[attr-defined]
    assert sweep(engine) == 0
    assert answers_texted(fake_twilio) == [(ANA, ASK)]
    assert conversation_steps(engine.db) == [(ASK, SendState.SENT)]
    assert response_count(engine.db) == 1


@pytest.mark.parametrize("seconds", [0, 11])
def test_an_answer_given_in_time_is_never_texted_again(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio, seconds: float
) -> None:
    sid = new_message_sid()
    assert twiml_text(post_slowly(engine, app, sid, seconds, IN_HANDLING)) == ASK
    engine.clock.advance(minutes=5)  # type: ignore[attr-defined]
    assert sweep(engine) == 0
    assert twiml_text(post(app, "9", sid)) is None  # a retry: Twilio has had that answer
    assert sweep(engine) == 0
    assert answers_texted(fake_twilio) == []
    assert conversation_steps(engine.db) == [(ASK, SendState.TWIML)]


def test_twilios_retry_of_a_late_answer_gets_it_in_twiml_and_the_sweeper_then_texts_nothing(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    sid = new_message_sid()
    assert twiml_text(post_slowly(engine, app, sid, 13, IN_HANDLING)) is None
    assert twiml_text(post(app, "9", sid)) == ASK  # Twilio retried (an operator's #rc= override)
    assert twiml_text(post(app, "9", sid)) is None
    assert sweep(engine) == 0
    assert answers_texted(fake_twilio) == []
    assert conversation_steps(engine.db) == [(ASK, SendState.TWIML)]
    assert response_count(engine.db) == 1


def test_a_retry_after_the_sweeper_texted_a_late_answer_is_silent(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    sid = new_message_sid()
    assert twiml_text(post_slowly(engine, app, sid, 13, IN_HANDLING)) is None
    assert sweep(engine) == 1
    assert twiml_text(post(app, "9", sid)) is None
    assert answers_texted(fake_twilio) == [(ANA, ASK)]
    assert response_count(engine.db) == 1


def test_a_retry_arriving_as_the_sweeper_takes_a_late_answer_leaves_it_to_whichever_took_it_first(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    sid = new_message_sid()
    assert twiml_text(post_slowly(engine, app, sid, 13, IN_HANDLING)) is None
    with held(engine.db, TAKING_THE_ANSWER) as taking, ThreadPoolExecutor(1) as pool:
        swept = pool.submit(sweep, engine)
        taking.wait()  # the sweeper found the late answer and is about to take it
        retried = post(app, "9", sid)  # when Twilio's retry comes and takes it first
        taking.release()
        assert swept.result(timeout=10) == 0
    assert twiml_text(retried) == ASK
    assert answers_texted(fake_twilio) == []
    assert conversation_steps(engine.db) == [(ASK, SendState.TWIML)]


class RetryDuringTheSend:
    """Twilio's REST API, with Twilio's retry of the reply arriving while the sweeper's text is being sent."""

    channel, name = Channel.SMS, "twilio"

    def __init__(self, inner: Transport, retry: Callable[[], Any]) -> None:
        self.inner, self.retry, self.retried = inner, retry, list[Any]()
        self.find_sent = inner.find_sent

    def send(self, message: Outgoing) -> str:
        self.retried.append(self.retry())
        return self.inner.send(message)


def test_a_retry_arriving_while_the_sweeper_texts_a_late_answer_is_silent(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    sid = new_message_sid()
    assert twiml_text(post_slowly(engine, app, sid, 13, IN_HANDLING)) is None
    twilio = RetryDuringTheSend(engine.transports[Channel.SMS], lambda: post(app, "9", sid))
    assert sweep_inbound(engine.db, {Channel.SMS: twilio}, clock=engine.clock) == 1
    assert [twiml_text(answer) for answer in twilio.retried] == [None]
    assert answers_texted(fake_twilio) == [(ANA, ASK)]


def test_a_retry_that_takes_a_late_answer_but_is_late_itself_leaves_it_to_the_sweeper(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    sid = new_message_sid()
    assert twiml_text(post_slowly(engine, app, sid, 13, IN_HANDLING)) is None
    assert twiml_text(post_slowly(engine, app, sid, 13, TAKING_THE_ANSWER, at_commit=True)) is None
    assert sweep(engine) == 1
    assert answers_texted(fake_twilio) == [(ANA, ASK)]
    assert twiml_text(post(app, "9", sid)) is None


def later(engine: Container, **delta: float) -> None:
    engine.clock.advance(**delta)  # type: ignore[attr-defined]


def committed_then_died(engine: Container, sid: str) -> TwimlAnswer:
    """What POST /twilio/sms does up to its commit, the answer committed for TwiML; then the process is killed
    before the HTTP answer is written, so Twilio's connection fails and it retries with the same MessageSid."""
    arrived = engine.clock.now()
    params = inbound_sms_params(ANA, FROM_NUMBER, "9", sid)
    message_id = store_reply(engine.db, sid=sid, sender=ANA, body="9", raw=params, now=arrived)
    owner = new_owner("webhook")
    assert claim_reply(engine.db, message_id, owner=owner, now=arrived)
    handled = handle_claimed(
        engine.db, message_id, owner=owner, clock=engine.clock, answer_by=arrived + ANSWER_IN_TWIML_WITHIN
    )
    assert handled is not None and handled.twiml is not None
    return handled.twiml


def test_a_retry_of_a_reply_whose_webhook_died_before_answering_gets_its_answer_once(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    """The answer is stored as given in TwiML, but it never reached Twilio: Twilio's retry proves that."""
    sid = new_message_sid()
    committed_then_died(engine, sid)
    later(engine, seconds=3)
    assert twiml_text(post(app, "9", sid)) == ASK
    assert twiml_text(post(app, "9", sid)) is None  # one retry at most gets it
    later(engine, minutes=5)
    assert sweep(engine) == 0
    assert answers_texted(fake_twilio) == []
    assert conversation_steps(engine.db) == [(ASK, SendState.TWIML)]
    assert response_count(engine.db) == 1


def test_an_answer_no_retry_collected_within_twilios_timeout_stays_silent(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    """Older than Twilio's 15 s, the answer is not what this delivery waits for: it is not given again."""
    sid = new_message_sid()
    committed_then_died(engine, sid)
    later(engine, seconds=16)
    assert twiml_text(post(app, "9", sid)) is None
    later(engine, minutes=5)
    assert sweep(engine) == 0
    assert answers_texted(fake_twilio) == []


def test_an_answer_a_retry_took_is_not_left_to_the_sweeper_by_the_request_it_was_first_given_to(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    """Twilio hung up on the first request (its read timeout) and retried while that request was finishing: the
    retry takes the answer, then the first request finds it late and would leave it to the sweeper."""
    sid = new_message_sid()
    first = committed_then_died(engine, sid)
    assert twiml_text(post(app, "9", sid)) == ASK
    assert not mark_late(engine.db, first, now=engine.clock.now())
    later(engine, minutes=5)
    assert sweep(engine) == 0
    assert answers_texted(fake_twilio) == []
    assert conversation_steps(engine.db) == [(ASK, SendState.TWIML)]


def test_an_answer_to_a_request_twilio_hung_up_on_is_texted_over_rest(
    engine: Container, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    """In time by our clock, but the connection is gone (Twilio's clock, a proxy in between): nobody reads it."""
    from service.web.app import create_app

    params = inbound_sms_params(ANA, FROM_NUMBER, "9", new_message_sid())
    status, text = asyncio.run(post_and_hang_up(create_app(engine), SMS_URL, params, DEFAULT_AUTH_TOKEN))
    assert status == 200 and "<Message>" not in text
    assert sweep(engine) == 1
    assert answers_texted(fake_twilio) == [(ANA, ASK)]


def test_the_scheduler_runs_the_sweeper_every_minute(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    with table_away(engine.db, "invitations"):
        assert post(app, "9", new_message_sid()).status_code == 503
    engine.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    ticker = Ticker(engine, holder="serve-a")
    try:
        job = ticker.scheduler.get_job("inbound")
        assert job.trigger.interval == timedelta(minutes=1)
        ticker.renew_lease()
        job.func()
    finally:
        ticker.dispatcher.close()  # never started: nothing else to stop
    assert [m.body for m in fake_twilio.messages()][1:] == ["Thanks! What do you like most?"]
    assert inbound_states(engine.db) == [InboundState.PROCESSED]


# --- status callbacks that name their message (`?m=<message id>`) ----------------------------------------


def invited(engine: Container) -> None:
    add_contacts(engine, [{"external_id": "ana", "name": "Ana Lima", "phone": ANA}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)


def survey_row(engine: Container) -> tuple[Invitation, Message]:
    with engine.db.transaction() as session:
        invitation = session.scalars(select(Invitation)).one()
        message = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).one()
        return invitation, message


def call_back(
    app: TestClient, url: str, sid: str, status: str = "sent", signed_for: str | None = None
) -> Any:
    """Twilio posting a message's status to the StatusCallback URL it was given (signed for that URL)."""
    params = status_callback_params(sid, status, ANA, FROM_NUMBER)
    signature = sign_twilio_request(DEFAULT_AUTH_TOKEN, signed_for or url, params)
    return post_signed(app, url, params, DEFAULT_AUTH_TOKEN, signature=signature)


def test_a_status_callback_naming_an_uncertain_send_records_its_sid_and_settles_it(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    invited(engine)
    fake_twilio.accept_then_fail_next(502)  # Twilio took the text; the edge in front of it answered 502
    assert dispatcher.drain().uncertain == 1
    [sent] = fake_twilio.messages()
    _, message = survey_row(engine)
    assert sent.status_callback == f"{STATUS_URL}?m={message.id}"

    assert call_back(app, sent.status_callback, sent.sid).status_code == 204
    invitation, message = survey_row(engine)
    assert (message.provider_id, message.send_state) == (sent.sid, SendState.SENT)
    assert (invitation.state, invitation.owner) == (InvitationState.SENT, None)
    assert call_back(app, sent.status_callback, sent.sid, "delivered").status_code == 204
    assert survey_row(engine)[0].state is InvitationState.DELIVERED

    engine.clock.advance(engine.dispatch_config().claim_timeout * 2)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert fake_twilio.count() == 1  # never texted again


def test_a_sid_called_back_while_the_send_was_under_way_settles_the_claim_without_twilios_log(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    invited(engine)
    [staged] = dispatcher._prepare(dispatcher._claim(), DispatchStats())
    sid = dispatcher.transports[Channel.SMS].send(staged.outgoing)  # the worker dies before recording it
    [sent] = fake_twilio.messages()
    assert call_back(app, sent.status_callback, sid, "queued").status_code == 204
    _, message = survey_row(engine)
    assert (message.provider_id, message.send_state) == (sid, SendState.SENDING)

    fake_twilio.reset()  # Twilio's log cannot help any more (a page later, a changed body...)
    engine.clock.advance(engine.dispatch_config().claim_timeout * 2)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert fake_twilio.count() == 0  # not texted again: the callback's sid proves Twilio has it
    invitation, message = survey_row(engine)
    assert (invitation.state, message.provider_id, message.send_state) == (
        InvitationState.SENT,
        sid,
        SendState.SENT,
    )


def test_a_forged_or_unsigned_message_id_in_a_status_callback_is_refused(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    invited(engine)
    fake_twilio.accept_then_fail_next(502)
    dispatcher.drain()
    [sent] = fake_twilio.messages()
    _, message = survey_row(engine)
    genuine = f"{STATUS_URL}?m={message.id}"
    params = status_callback_params(sent.sid, "sent", ANA, FROM_NUMBER)
    # Signed by Twilio for a URL without the id (or another id), posted with ours: the URL was changed.
    assert call_back(app, genuine, sent.sid, signed_for=STATUS_URL).status_code == 403
    assert call_back(app, genuine, sent.sid, signed_for=f"{STATUS_URL}?m={message.id + 1}").status_code == 403
    assert post_unsigned(app, genuine, params).status_code == 403
    invitation, message = survey_row(engine)
    assert (message.provider_id, invitation.state) == (None, InvitationState.CLAIMED)
    assert call_back(app, genuine, sent.sid).status_code == 204
    assert survey_row(engine)[1].provider_id == sent.sid
