"""Replies racing the conversation's lock on PostgreSQL: a reply goes to the right survey, is never lost, and
is handled once, whatever changes while it waits for the invitation's row lock.

Each race is made deterministic by holding the invitation's row lock from a second connection until the
reply's handling waits on it, changing what the dispatcher would change meanwhile, and letting go.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select, text, update

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.replies.inbound import Handled, handle_claimed, new_owner, store_and_claim
from service.container import Container
from storage.db import Database
from storage.enums import (
    Direction,
    InvitationState,
    MessagePurpose,
    SendState,
)
from storage.tables import Campaign, Contact, Invitation, Message, Response
from tests.fixtures.engine import add_contacts, apply_yaml, plan

ANA = "+4915112345678"
CAMPAIGNS = """
campaigns:
  - name: {name}
    kind: relationship
    interval_days: 1
    min_days_between_surveys: 0
    channels: [sms]
    brand: Acme
    send_window: {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}}
    messages:
      en: {{ask_comment: "{name}: why that score?"}}
"""
ON_POSTGRESQL = pytest.mark.parametrize("db", ["postgresql"], indirect=True)


def survey_ana(engine: Container, dispatcher: Dispatcher, name: str = "pulse") -> int:
    """Text Ana a survey of campaign `name`; the invitation's id."""
    add_contacts(engine, [{"external_id": "ana", "name": "Ana Lima", "phone": ANA}])
    apply_yaml(engine, CAMPAIGNS.format(name=name))
    plan(engine)
    assert dispatcher.drain().sent == 1
    with engine.db.transaction() as session:
        return session.scalars(
            select(Invitation.id).join(Campaign).where(Campaign.name == name).order_by(Invitation.id.desc())
        ).one()


class Reply(threading.Thread):
    """One inbound SMS through the webhook's path (store and claim, then the conversation step)."""

    def __init__(self, engine: Container, body: str, sid: str) -> None:
        super().__init__(daemon=True)
        self.engine, self.body, self.sid = engine, body, sid
        self.result: Handled | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = handle(self.engine, self.body, self.sid)
        except BaseException as failure:  # reported by the test
            self.error = failure

    def answer(self) -> str | None:
        self.join(timeout=20)
        assert not self.is_alive(), "the reply's handling never finished"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result.answer.text if self.result.answer else None


def handle(engine: Container, body: str, sid: str) -> Handled | None:
    owner = new_owner("test")
    now = engine.clock.now()
    message_id, claimed = store_and_claim(
        engine.db, sid=sid, sender=ANA, body=body, raw={"Body": body}, owner=owner, now=now
    )
    assert claimed
    return handle_claimed(engine.db, message_id, owner=owner, clock=engine.clock)


def waiting_on_locks(db: Database, count: int) -> None:
    """Until `count` other sessions of this database wait on a lock."""
    deadline = time.monotonic() + 10
    with db.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            connection.rollback()
            if waiting >= count:
                return
            time.sleep(0.01)
    raise AssertionError(f"fewer than {count} sessions came to wait on a lock")


def lock_invitation(connection: Connection, invitation_id: int) -> None:
    connection.execute(select(Invitation.id).where(Invitation.id == invitation_id).with_for_update())


def answer_rows(db: Database) -> list[Any]:
    with db.engine.connect() as connection:
        return list(
            connection.execute(
                select(Message.body, Message.contact_id, Message.invitation_id)
                .where(Message.direction == Direction.OUTBOUND, Message.reply_to_id.is_not(None))
                .order_by(Message.id)
            )
        )


def ana_id(db: Database) -> int:
    with db.engine.connect() as connection:
        return connection.execute(select(Contact.id).where(Contact.phone == ANA)).scalar_one()


# --- 1. a score and a comment arriving together ---------------------------------------------------------------


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_score_and_a_comment_sent_together_are_both_kept(engine: Container, dispatcher: Dispatcher) -> None:
    invitation_id = survey_ana(engine, dispatcher)
    with engine.db.engine.connect() as holder:
        lock_invitation(holder, invitation_id)
        score = Reply(engine, "3", "SM-score")
        score.start()
        waiting_on_locks(engine.db, 1)
        comment = Reply(engine, "the app keeps crashing", "SM-comment")
        comment.start()
        waiting_on_locks(engine.db, 2)  # queued behind the score
        holder.rollback()
    assert score.answer() == "pulse: why that score?"
    assert comment.answer() is not None
    with engine.db.transaction() as session:
        [response] = session.scalars(select(Response))
        assert (response.score, response.comment) == (3, "the app keeps crashing")


# --- 2. a newer survey text recorded while the reply waits -----------------------------------------------------


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_survey_text_accepted_while_the_reply_waits_gets_the_reply(
    engine: Container, dispatcher: Dispatcher
) -> None:
    older = survey_ana(engine, dispatcher, "pulse")
    newer = survey_ana(engine, dispatcher, "onboarding")
    with engine.db.engine.begin() as connection:  # the newer text is still being sent
        connection.execute(
            update(Invitation).where(Invitation.id == newer).values(state=InvitationState.CLAIMED)
        )
        connection.execute(
            update(Message).where(Message.invitation_id == newer).values(send_state=SendState.SENDING)
        )
    with engine.db.engine.connect() as dispatcher_connection:
        lock_invitation(dispatcher_connection, older)
        score = Reply(engine, "9", "SM-score")
        score.start()
        waiting_on_locks(engine.db, 1)
        # The dispatcher records Twilio's acceptance of the newer text.
        dispatcher_connection.execute(
            update(Invitation).where(Invitation.id == newer).values(state=InvitationState.SENT)
        )
        dispatcher_connection.execute(
            update(Message).where(Message.invitation_id == newer).values(send_state=SendState.SENT)
        )
        dispatcher_connection.commit()
    assert score.answer() == "onboarding: why that score?"
    with engine.db.transaction() as session:
        assert [r.invitation_id for r in session.scalars(select(Response))] == [newer]


# --- 3. the invitation's row changed so that the locked choice drops it ----------------------------------------


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_reply_waiting_while_a_reminder_is_claimed_is_still_answered(
    engine: Container, dispatcher: Dispatcher
) -> None:
    invitation_id = survey_ana(engine, dispatcher)
    with engine.db.engine.connect() as dispatcher_connection:
        lock_invitation(dispatcher_connection, invitation_id)
        score = Reply(engine, "10", "SM-score")
        score.start()
        waiting_on_locks(engine.db, 1)
        # The dispatcher claims the reminder and stages its text: the invitation no longer reads as accepted.
        dispatcher_connection.execute(
            update(Invitation).where(Invitation.id == invitation_id).values(state=InvitationState.CLAIMED)
        )
        invitation_text = dispatcher_connection.execute(
            select(Message).where(Message.invitation_id == invitation_id)
        ).one()
        dispatcher_connection.execute(
            insert(Message).values(
                direction=Direction.OUTBOUND,
                channel=invitation_text.channel,
                purpose=MessagePurpose.REMINDER,
                invitation_id=invitation_id,
                contact_id=invitation_text.contact_id,
                address=ANA,
                body="reminder",
                send_state=SendState.SENDING,
                created_at=engine.clock.now(),
                updated_at=engine.clock.now(),
            )
        )
        dispatcher_connection.commit()
    assert score.answer() == "pulse: why that score?"
    with engine.db.transaction() as session:
        [response] = session.scalars(select(Response))
        assert (response.invitation_id, response.score) == (invitation_id, 10)


# --- 4. the answer's contact -----------------------------------------------------------------------------------


def test_a_scores_answer_and_an_opt_outs_answer_are_tied_to_the_contact(
    engine: Container, dispatcher: Dispatcher
) -> None:
    invitation_id = survey_ana(engine, dispatcher)
    assert handle(engine, "7", "SM-1") is not None
    assert handle(engine, "8", "SM-2") is not None  # a correction: the response is read again
    assert handle(engine, "slow delivery", "SM-3") is not None
    assert handle(engine, "STOP", "SM-4") is not None
    contact = ana_id(engine.db)
    rows = answer_rows(engine.db)
    assert [row.contact_id for row in rows] == [contact] * 4
    assert [row.invitation_id for row in rows[:3]] == [invitation_id] * 3
    with engine.db.transaction() as session:
        [response] = session.scalars(select(Response))
        assert (response.score, response.comment, response.contact_id) == (8, "slow delivery", contact)
