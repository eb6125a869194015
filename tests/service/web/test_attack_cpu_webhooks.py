"""Attacks on the Twilio webhooks' own threads (`service.web.twilio.twilio_threads`).

The webhooks' database work runs in a pool of its own: eight threads on PostgreSQL, one on SQLite. Whatever
waits inside a handling (a row lock another transaction holds) keeps its thread; these tests hold such a lock
from a second connection and look at what the other webhooks, other people's replies, get meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.replies.inbound import sweep_inbound
from service.container import Container
from service.web.twilio import POSTGRES_TWILIO_THREADS
from storage.db import Database
from storage.enums import Direction, SendState
from storage.tables import Contact, Invitation, Message
from tests.fixtures.databases import held
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.twilio_webhooks import (
    FORM_CONTENT_TYPE,
    SIGNATURE_HEADER,
    inbound_sms_params,
    new_message_sid,
    post_signed,
    sign_twilio_request,
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
ANA, BOB = "+4915112345678", "+4915187654321"
SMS_URL = f"{PUBLIC_URL}/twilio/sms"
ASK_REASON = "What do you like most"  # the question a promoter (9) is asked
ON_POSTGRESQL = pytest.mark.parametrize(
    "db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    from service.web.app import create_app

    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def surveyed(engine: Container, dispatcher: Dispatcher) -> None:
    add_contacts(
        engine,
        [
            {"external_id": "ana", "name": "Ana Lima", "phone": ANA},
            {"external_id": "bob", "name": "Bob Stone", "phone": BOB},
        ],
    )
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == 2


def post(app: TestClient, phone: str, body: str) -> Any:
    params = inbound_sms_params(phone, FROM_NUMBER, body, new_message_sid())
    return post_signed(app, SMS_URL, params, DEFAULT_AUTH_TOKEN)


def invitation_of(db: Database, phone: str) -> int:
    with db.transaction() as session:
        return session.scalars(select(Invitation.id).join(Contact).where(Contact.phone == phone)).one()


def lock_waiters(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar()
            or 0
        )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@ON_POSTGRESQL
def test_one_persons_replies_waiting_on_their_invitations_lock_do_not_hold_up_another_persons_reply(
    engine: Container, app: TestClient, surveyed: None
) -> None:
    """Ana's invitation is locked by another transaction (held here) while she sends a burst of texts; each of
    them waits for that lock inside its handling. Bob's reply, about another invitation, has nothing to wait for:
    it is answered while Ana's lock is still held: her texts wait for it at most LOCK_WAIT (handle_claimed)."""
    ana = invitation_of(engine.db, ANA)
    burst = POSTGRES_TWILIO_THREADS
    with engine.db.engine.connect() as holder, ThreadPoolExecutor(burst + 1) as pool:
        holder.exec_driver_sql("BEGIN")
        holder.exec_driver_sql(f"SELECT id FROM invitations WHERE id = {ana} FOR UPDATE")
        try:
            anas = [pool.submit(post, app, ANA, f"and another thing, number {n}") for n in range(burst)]
            wait_for(
                lambda: lock_waiters(engine.db) >= burst, "Ana's texts to wait for her invitation's lock"
            )
            bobs = pool.submit(post, app, BOB, "9")
            try:
                answered = bobs.result(
                    timeout=5
                )  # bounds the failure only: nothing Bob's reply needs is held
            except TimeoutError:
                answered = None
        finally:
            holder.exec_driver_sql("COMMIT")
        # Each of Ana's gave up waiting after LOCK_WAIT (503: stored, for Twilio's retry or the sweeper).
        assert {answer.result(timeout=20).status_code for answer in anas} <= {200, 503}
        if answered is None:
            bobs.result(timeout=20)
    assert answered is not None, (
        "Bob's reply waited for Ana's invitation's lock: every webhook thread was hers"
    )
    assert answered.status_code == 200 and ASK_REASON in answered.text
    # The texts that gave up are stored, and handled by the sweeper once the lock is gone: none is lost.
    engine.clock.advance(minutes=5)  # type: ignore[attr-defined]
    sweep_inbound(engine.db, engine.transports, clock=engine.clock)
    assert inbound_states(engine.db, ANA) == ["processed"] * burst


def inbound_states(db: Database, phone: str) -> list[str]:
    with db.transaction() as session:
        states = session.scalars(
            select(Message.inbound_state).where(
                Message.direction == Direction.INBOUND, Message.address == phone
            )
        )
        return [str(state.value) for state in states if state is not None]


def sms_scope(params: dict[str, str]) -> tuple[dict[str, Any], bytes]:
    """An ASGI request of Twilio's inbound SMS webhook, signed, and its body."""
    split = urlsplit(SMS_URL)
    body = urlencode(params).encode()
    headers = [
        (b"host", split.netloc.encode()),
        (b"content-type", FORM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (
            SIGNATURE_HEADER.lower().encode(),
            sign_twilio_request(DEFAULT_AUTH_TOKEN, SMS_URL, params).encode(),
        ),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": split.scheme,
        "path": split.path,
        "raw_path": split.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": (split.hostname or "", split.port or 443),
    }
    return scope, body


async def post_and_cancel_while_committing(engine: Container) -> None:
    """Ana's "9" through the app, its request task cancelled (as a server does to requests still running when
    its graceful shutdown times out) while the handling's commit waits; the commit then goes through."""
    from service.web.app import create_app

    app = create_app(engine)
    scope, body = sms_scope(inbound_sms_params(ANA, FROM_NUMBER, "9", new_message_sid()))
    incoming = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(_message: dict[str, Any]) -> None:
        return None

    with held(engine.db, "INSERT INTO responses", at_commit=True) as statement:
        request = asyncio.create_task(app(scope, receive, send))
        await asyncio.to_thread(statement.wait)
        engine.clock.advance(seconds=20)  # type: ignore[attr-defined]  # Twilio has hung up
        request.cancel()
        statement.release()
        with contextlib.suppress(asyncio.CancelledError):
            await request
        threads = getattr(app.state, "twilio_threads", None)
        if threads is not None:  # the handling's thread goes on after its request is cancelled: let it finish
            await asyncio.to_thread(threads.shutdown, True)


def answer_states(db: Database) -> list[SendState | None]:
    with db.transaction() as session:
        return list(
            session.scalars(
                select(Message.send_state)
                .where(Message.direction == Direction.OUTBOUND, Message.reply_to_id.is_not(None))
                .order_by(Message.id)
            )
        )


def test_an_answer_committed_for_a_request_cancelled_meanwhile_is_texted_by_the_sweeper_once(
    engine: Container, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    """The handling committed its answer for TwiML, but the request that would have carried it (or marked it
    late) is gone: the answer must still reach Ana, over REST, once."""
    asyncio.run(post_and_cancel_while_committing(engine))
    for _ in range(3):  # the sweeps of the next quarter of an hour
        sweep_inbound(engine.db, engine.transports, clock=engine.clock)
        engine.clock.advance(minutes=5)  # type: ignore[attr-defined]
    _survey, *answers = [m.body for m in fake_twilio.messages() if m.to == ANA]
    assert len(answers) == 1, (
        f"Ana was texted {answers} after her survey; her answer is left {answer_states(engine.db)}"
    )
    assert ASK_REASON in answers[0]
