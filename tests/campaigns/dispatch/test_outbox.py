"""The outbox's transitions act on the row as it is under its lock, never on an earlier read of it."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DataError

from campaigns.channels.base import Outgoing
from campaigns.dispatch.dispatcher import Dispatcher, DispatchStats
from campaigns.dispatch.outbox import stage_messages
from campaigns.replies.conversation import InboundSms, handle_inbound
from service.container import Container
from storage.db import Database
from storage.enums import Channel, Direction, InvitationState, MessagePurpose, SendState
from storage.tables import Invitation, Message, Response
from tests.fixtures.engine import add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import FakeTwilio

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
"""
ANA = {"external_id": "ana", "phone": "+4915112345678", "timezone": "UTC"}


def wait_for_a_lock_wait(db: Database, timeout: float = 10) -> None:
    """Until some other PostgreSQL session of this database waits on a lock (the recorder, here)."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the record step never waited for the reply's lock")


# PostgreSQL only: sees who waits on a lock in pg_stat_activity; SQLite's write lock shows no waiter
@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_reply_committed_between_the_send_and_its_record_survives(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, db: Database
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    [staged] = dispatcher._prepare(dispatcher._claim(), DispatchStats())
    outcome = dispatcher._send(staged)  # Ana is texted; her "9" comes in before the answer is recorded
    now = engine.clock.now()
    reply = engine.db.sessions()
    reply.begin()
    inbound = Message(
        direction=Direction.INBOUND,
        channel=Channel.SMS,
        purpose=MessagePurpose.REPLY,
        address=ANA["phone"],
        body="9",
        provider_id="SMreply",
        created_at=now,
        updated_at=now,
    )
    reply.add(inbound)
    reply.flush()
    assert handle_inbound(InboundSms(ANA["phone"], "9", inbound.id), now=now, session=reply) is not None
    reply.flush()  # the reply holds the invitation's lock and has written, but not committed
    recorder = threading.Thread(target=dispatcher._record, args=([outcome], DispatchStats()))
    recorder.start()
    try:
        wait_for_a_lock_wait(engine.db)
        reply.commit()
    finally:
        reply.close()
        recorder.join(timeout=10)
    assert not recorder.is_alive()
    with engine.db.transaction() as session:
        invitation = session.scalars(select(Invitation)).one()
        sent = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).all()
        scores = session.scalars(select(Response.score)).all()
    assert invitation.state is InvitationState.RESPONDED
    assert invitation.owner is None
    assert [m.send_state for m in sent if m.purpose is MessagePurpose.INVITATION] == [SendState.SENT]
    assert scores == [9]
    assert len(fake_twilio.messages()) == 1


def test_a_staged_message_keeps_its_whole_address_or_is_not_staged(engine: Container) -> None:
    """An address longer than the column holds is refused by PostgreSQL (SQLite keeps it whole), never cut short:
    a cut address would name someone else to the replies and bounces matched by address."""
    add_contacts(engine, [{**ANA, "email": "ana@example.com"}])
    apply_yaml(engine, CAMPAIGN.replace("[sms]", "[email]"))
    plan(engine)
    address = "a" * 300 + "@" + "b" * 30 + ".example"  # 339 characters; the column holds 320
    outgoing = Outgoing(channel=Channel.EMAIL, to=address, body="How likely are you to recommend us?")
    now = engine.clock.now()
    with contextlib.suppress(DataError), engine.db.transaction() as session:
        invitation = session.scalars(select(Invitation)).one()
        stage_messages([(invitation, outgoing)], purpose=MessagePurpose.INVITATION, now=now, session=session)
    with engine.db.transaction() as session:
        assert set(session.scalars(select(Message.address))) <= {address}
