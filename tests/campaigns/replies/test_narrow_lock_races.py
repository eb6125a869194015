"""Replies racing the narrow locking read on PostgreSQL: the step locks its survey reading ids only, then reads
the rows it uses; whatever commits between the two statements, or while the step waits for a lock, the reply
goes to the right survey, once.

A race between the two statements is made deterministic by pausing the reply's thread right after its locking
read (a cursor event), committing what the dispatcher would commit, and letting it go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.dispatch.expiry import expire_invitations
from service.container import Container
from storage.enums import (
    Category,
    Channel,
    DeliveryStatus,
    Direction,
    InboundState,
    InvitationState,
    SendState,
)
from storage.tables import Invitation, Message, Response
from tests.campaigns.replies.test_inbound_attacks import (
    ON_POSTGRESQL,
    Reply,
    answer_rows,
    lock_invitation,
    survey_ana,
    waiting_on_locks,
)


def locking_read(statement: str) -> bool:
    return "FOR UPDATE OF invitations" in statement and "contacts" not in statement


def full_read(statement: str) -> bool:
    return "JOIN contacts" in statement and "FOR UPDATE" not in statement


@contextmanager
def paused_after_locking_read(
    engine: Container, statement_is: Callable[[str], bool] = locking_read
) -> Iterator[tuple[threading.Event, threading.Event]]:
    """(paused, go): a reply's thread stops after its first statement that `statement_is` (by default the
    ``FOR UPDATE OF invitations`` read) until `go`."""
    paused, go = threading.Event(), threading.Event()
    main = threading.current_thread()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.current_thread() is main or paused.is_set():
            return
        if statement_is(statement):
            paused.set()
            assert go.wait(10), "the test never let the reply go on"

    event.listen(engine.db.engine, "after_cursor_execute", after)
    try:
        yield paused, go
    finally:
        go.set()
        event.remove(engine.db.engine, "after_cursor_execute", after)


def responses(engine: Container) -> list[tuple[int, int | None, str | None, bool]]:
    with engine.db.transaction() as session:
        return [
            (r.invitation_id, r.score, r.comment, r.late)
            for r in session.scalars(select(Response).order_by(Response.id))
        ]


def in_flight(engine: Container, invitation_id: int) -> None:
    with engine.db.engine.begin() as connection:
        connection.execute(
            update(Invitation).where(Invitation.id == invitation_id).values(state=InvitationState.CLAIMED)
        )
        connection.execute(
            update(Message).where(Message.invitation_id == invitation_id).values(send_state=SendState.SENDING)
        )


def inbound_states(engine: Container) -> list[InboundState | None]:
    with engine.db.engine.connect() as connection:
        return list(
            connection.scalars(
                select(Message.inbound_state)
                .where(Message.direction == Direction.INBOUND)
                .order_by(Message.id)
            )
        )


# --- (a) a second survey accepted between the locking read and the full read ---------------------------------


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_survey_accepted_between_the_locking_read_and_the_full_read_takes_the_reply_under_its_lock(
    engine: Container, dispatcher: Dispatcher
) -> None:
    """The step locked the older survey; before it reads the rows, the newer text is accepted and the
    dispatcher still holds the newer survey's row: the step moves to it, waits for its lock, and records once."""
    survey_ana(engine, dispatcher, "pulse")
    newer = survey_ana(engine, dispatcher, "onboarding")
    in_flight(engine, newer)
    with (
        paused_after_locking_read(engine) as (paused, go),
        engine.db.engine.connect() as dispatcher_connection,
    ):
        score = Reply(engine, "9", "SM-score")
        score.start()
        assert paused.wait(10)
        lock_invitation(dispatcher_connection, newer)
        dispatcher_connection.execute(
            update(Invitation).where(Invitation.id == newer).values(state=InvitationState.SENT)
        )
        dispatcher_connection.execute(
            update(Message).where(Message.invitation_id == newer).values(send_state=SendState.SENT)
        )
        dispatcher_connection.commit()
        lock_invitation(dispatcher_connection, newer)  # the dispatcher goes on with the newer survey's row
        go.set()
        waiting_on_locks(
            engine.db, 1
        )  # the step waits for that row (it does not answer from an unlocked read)
        dispatcher_connection.rollback()
    assert score.answer() == "onboarding: why that score?"
    assert responses(engine) == [(newer, 9, None, False)]
    assert [row.invitation_id for row in answer_rows(engine.db)] == [newer]


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_newer_text_that_fails_while_the_reply_waits_for_it_sends_the_reply_back_to_the_older_survey(
    engine: Container, dispatcher: Dispatcher
) -> None:
    """The choice moves to the newer survey and, while the step waits for its row, back again: that text
    failed. The older survey, still locked by the step's first read, gets the reply."""
    older = survey_ana(engine, dispatcher, "pulse")
    newer = survey_ana(engine, dispatcher, "onboarding")
    in_flight(engine, newer)
    with (
        paused_after_locking_read(engine) as (paused, go),
        engine.db.engine.connect() as dispatcher_connection,
    ):
        score = Reply(engine, "4", "SM-score")
        score.start()
        assert paused.wait(10)
        lock_invitation(dispatcher_connection, newer)
        dispatcher_connection.execute(
            update(Invitation).where(Invitation.id == newer).values(state=InvitationState.SENT)
        )
        dispatcher_connection.execute(
            update(Message).where(Message.invitation_id == newer).values(send_state=SendState.SENT)
        )
        dispatcher_connection.commit()  # accepted...
        lock_invitation(dispatcher_connection, newer)
        go.set()
        waiting_on_locks(engine.db, 1)
        dispatcher_connection.execute(  # ...and then undelivered, while the step waits for its row
            update(Message)
            .where(Message.invitation_id == newer)
            .values(delivery_status=DeliveryStatus.UNDELIVERED)
        )
        dispatcher_connection.commit()
    assert score.answer() == "pulse: why that score?"
    assert responses(engine) == [(older, 4, None, False)]


# --- (b) a score, a correction and a comment handled concurrently --------------------------------------------


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_score_its_correction_and_a_comment_queued_on_the_lock_make_one_consistent_response(
    engine: Container, dispatcher: Dispatcher
) -> None:
    invitation_id = survey_ana(engine, dispatcher)
    with engine.db.engine.connect() as holder:
        lock_invitation(holder, invitation_id)
        replies = []
        for count, (body, sid) in enumerate(
            (("3", "SM-1"), ("sorry, I meant 8", "SM-2"), ("the app keeps crashing", "SM-3")), start=1
        ):
            reply = Reply(engine, body, sid)
            reply.start()
            waiting_on_locks(engine.db, count)  # each queued behind the one before
            replies.append(reply)
        holder.rollback()
    answers = [reply.answer() for reply in replies]
    # PostgreSQL does not promise the queue's order past the first waiter: a waiter that finds the row updated
    # by the one before follows it to its new version, and another waiter may lock that first. Whatever the
    # order, the answers tell the same story as the one response.
    assert answers[0] == "pulse: why that score?"
    [(invitation, score, comment, late)] = responses(engine)
    assert (invitation, comment, late) == (invitation_id, "the app keeps crashing", False)
    if answers[1] is None:  # the correction came after the comment: the score is final
        assert score == 3
    else:
        assert (answers[1], score) == ("pulse: why that score?", 8)
    assert answers[2] is not None
    assert inbound_states(engine) == [InboundState.PROCESSED] * 3
    assert len(answer_rows(engine.db)) == len([answer for answer in answers if answer is not None])


# --- (c) NOWAIT when the row that the choice moved to is held ------------------------------------------------


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_reply_whose_moved_choice_is_held_fails_fast_then_waits_and_is_handled_once(
    engine: Container, dispatcher: Dispatcher
) -> None:
    """The older survey has closed and the newer text is in flight, its row held by the dispatcher recording
    the send: the first go (NOWAIT) gives up on that row, the second waits for it, and the reply is handled
    once, on the newer survey."""
    older = survey_ana(engine, dispatcher, "pulse")
    newer = survey_ana(engine, dispatcher, "onboarding")
    in_flight(engine, newer)
    with engine.db.engine.begin() as connection:  # the older survey ended before Ana wrote
        connection.execute(
            update(Invitation)
            .where(Invitation.id == older)
            .values(expires_at=engine.clock.now() - timedelta(minutes=1))
        )
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with engine.db.engine.connect() as dispatcher_connection:
        lock_invitation(dispatcher_connection, newer)
        event.listen(engine.db.engine, "before_cursor_execute", seen)
        try:
            score = Reply(engine, "10", "SM-score")
            score.start()
            waiting_on_locks(engine.db, 1)  # the second go, after NOWAIT met the held row
            dispatcher_connection.execute(
                update(Invitation).where(Invitation.id == newer).values(state=InvitationState.SENT)
            )
            dispatcher_connection.execute(
                update(Message).where(Message.invitation_id == newer).values(send_state=SendState.SENT)
            )
            dispatcher_connection.commit()
            answer = score.answer()
        finally:
            event.remove(engine.db.engine, "before_cursor_execute", seen)
    assert any("NOWAIT" in statement for statement in statements)
    assert answer == "onboarding: why that score?"
    assert responses(engine) == [(newer, 10, None, False)]
    assert inbound_states(engine) == [InboundState.PROCESSED]
    assert len(answer_rows(engine.db)) == 1


# --- (d) the survey expires while the reply waits for its lock -----------------------------------------------


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_reply_written_in_time_is_not_late_when_the_survey_expires_while_it_waits(
    engine: Container, dispatcher: Dispatcher
) -> None:
    invitation_id = survey_ana(engine, dispatcher)
    with engine.db.engine.connect() as connection:
        expires_at = connection.execute(
            select(Invitation.expires_at).where(Invitation.id == invitation_id)
        ).scalar_one()
    engine.clock.advance(seconds=(expires_at - engine.clock.now()).total_seconds() - 1)  # type: ignore[attr-defined]
    with engine.db.engine.connect() as holder:
        lock_invitation(holder, invitation_id)
        score = Reply(engine, "6", "SM-score")
        score.start()
        waiting_on_locks(engine.db, 1)
        holder.rollback()
        engine.clock.advance(seconds=2)  # type: ignore[attr-defined]
        expiry = threading.Thread(target=expire_invitations, args=(dispatcher,), daemon=True)
        # The expiry can only run once the step lets go; it must then leave the answered survey alone.
        expiry.start()
        assert score.answer() is not None
        expiry.join(10)
    assert responses(engine) == [(invitation_id, 6, None, False)]
    with engine.db.engine.connect() as connection:
        state = connection.execute(
            select(Invitation.state).where(Invitation.id == invitation_id)
        ).scalar_one()
    assert state is InvitationState.RESPONDED


@pytest.mark.postgres
@ON_POSTGRESQL
def test_the_expiry_committed_while_the_reply_waits_keeps_the_reply_in_time(
    engine: Container, dispatcher: Dispatcher
) -> None:
    """The expiry holds the row and commits ``expired`` while the step waits: the reply, written before the
    end, is recorded on that survey and not marked late."""
    invitation_id = survey_ana(engine, dispatcher)
    with engine.db.engine.connect() as connection:
        expires_at = connection.execute(
            select(Invitation.expires_at).where(Invitation.id == invitation_id)
        ).scalar_one()
    engine.clock.advance(seconds=(expires_at - engine.clock.now()).total_seconds() - 1)  # type: ignore[attr-defined]
    with engine.db.engine.connect() as expiry:
        lock_invitation(expiry, invitation_id)
        score = Reply(engine, "6", "SM-score")
        score.start()
        waiting_on_locks(engine.db, 1)
        expiry.execute(
            update(Invitation).where(Invitation.id == invitation_id).values(state=InvitationState.EXPIRED)
        )
        expiry.commit()
    assert score.answer() == "pulse: why that score?"
    assert responses(engine) == [(invitation_id, 6, None, False)]


# --- rows read before their lock are read again under it ------------------------------------------------------


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_survey_answered_elsewhere_between_the_full_read_and_its_lock_is_read_again(
    engine: Container, dispatcher: Dispatcher
) -> None:
    """The step's first full read loads the newer survey before its row is locked; another transaction (the
    survey page, say) answers it and commits before the step takes the lock. The step reads the survey again
    under the lock: Ana's text corrects that answer's score, and the answer's first time is kept."""
    survey_ana(engine, dispatcher, "pulse")
    newer = survey_ana(engine, dispatcher, "onboarding")
    in_flight(engine, newer)
    answered_at = engine.clock.now()
    with engine.db.engine.connect() as connection:
        contact_id, campaign_id = connection.execute(
            select(Invitation.contact_id, Invitation.campaign_id).where(Invitation.id == newer)
        ).one()
    engine.clock.advance(minutes=3)  # type: ignore[attr-defined]
    with (
        paused_after_locking_read(engine) as (paused, go),
        paused_after_locking_read(engine, full_read) as (read, read_go),
    ):
        correction = Reply(engine, "8", "SM-score")
        correction.start()
        assert paused.wait(10)
        with engine.db.engine.begin() as connection:  # the newer text is accepted
            connection.execute(
                update(Invitation).where(Invitation.id == newer).values(state=InvitationState.SENT)
            )
            connection.execute(
                update(Message).where(Message.invitation_id == newer).values(send_state=SendState.SENT)
            )
        go.set()
        assert read.wait(10)
        with engine.db.engine.begin() as connection:  # answered on the page, before the step's lock
            connection.execute(
                update(Invitation)
                .where(Invitation.id == newer)
                .values(state=InvitationState.RESPONDED, responded_at=answered_at)
            )
            connection.execute(
                insert(Response).values(
                    invitation_id=newer,
                    contact_id=contact_id,
                    campaign_id=campaign_id,
                    channel=Channel.SMS,
                    score=5,
                    category=Category.DETRACTOR,
                    late=False,
                    contact_snapshot={},
                    test=False,
                    answered_at=answered_at,
                    created_at=answered_at,
                    updated_at=answered_at,
                )
            )
        read_go.set()
        assert correction.answer() is not None
    assert responses(engine) == [(newer, 8, None, False)]
    with engine.db.engine.connect() as connection:
        assert (
            connection.execute(select(Invitation.responded_at).where(Invitation.id == newer)).scalar_one()
            == answered_at
        )


# --- the survey page answering the survey a text is being handled for ------------------------------------------


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_page_answer_and_a_text_score_for_one_survey_at_once_are_both_handled(
    engine: Container, dispatcher: Dispatcher
) -> None:
    """The text's step holds the survey's row and has read it; the survey page (which writes the response before
    it locks the row) answers the same survey meanwhile. Neither may fail: one waits for the other."""
    from campaigns.replies.survey_page import record_answer

    invitation_id = survey_ana(engine, dispatcher)
    with engine.db.engine.connect() as connection:
        token = connection.execute(
            select(Invitation.token).where(Invitation.id == invitation_id)
        ).scalar_one()
    page_error: list[BaseException] = []

    def page() -> None:
        try:
            record_answer(token, 9, "", db=engine.db, now=engine.clock.now())
        except BaseException as failure:  # reported by the test
            page_error.append(failure)

    with paused_after_locking_read(engine, full_read) as (read, go):
        score = Reply(engine, "3", "SM-score")
        score.start()
        assert read.wait(10)
        on_page = threading.Thread(target=page, daemon=True)
        on_page.start()
        waiting_on_locks(engine.db, 1)  # the page waits for the survey's row, its response inserted
        go.set()
        answer = score.answer()
        on_page.join(20)
    assert not page_error, page_error
    assert answer is not None
    [(invitation, _, _, _)] = responses(engine)
    assert invitation == invitation_id
