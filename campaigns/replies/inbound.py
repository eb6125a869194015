"""Inbound SMS replies: stored first, handled exactly once under a claim, and swept up when their handling failed.

What Twilio's webhook semantics ask of us: Twilio retries a webhook only when it got no usable answer (a failed
connection, no answer within its 15 s timeout, and a 5xx only where the operator configured retries), and it
does not retry a 500 by default. So a reply is stored before anything else, and one whose handling failed is
picked up again by us, not left to Twilio.

- :func:`store_reply` writes the raw message (``received``) unless its MessageSid is already stored.
- :func:`claim_reply` is the one way to handle it: a compare-and-set ``received -> processing`` with an owner and
  a time, which one request or sweep wins. A ``processing`` claim older than :data:`CLAIM_STALE_AFTER` belongs
  to a process that died and may be taken over.
- :func:`handle_claimed` does the conversation step in one transaction that starts with the compare-and-set
  ``processing (ours) -> processed``: on PostgreSQL that locks the row, so a takeover waits for our commit and
  then finds the reply handled; on SQLite it takes the write lock. Its answer is stored with the reply it answers
  (``reply_to_id``): handed to Twilio in the webhook's TwiML, or staged to be texted over the REST API.
- :func:`release_claim` gives a failed handling back (``received``) for the next retry or sweep.
- :func:`settled_reply` says what a duplicate delivery gets: nothing yet (the handling is not committed: the
  webhook answers 503), silence (the first answer reached Twilio in time), or the stored TwiML answer again when
  the handling ended later than Twilio waits for a webhook, so that Twilio dropped the first answer.
- :func:`sweep_inbound` handles replies left ``received`` longer than :data:`SWEEP_AFTER` (or under a stale
  claim) through the same claim, and texts each answer through the SMS adapter with no transaction held open
  across the provider call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.channels.base import (
    Outgoing,
    PermanentSendError,
    SendError,
    TemporarySendError,
    Transport,
    UncertainSendError,
)
from campaigns.clock import Clock
from campaigns.dispatch.delivery import apply_held
from campaigns.privacy import mask_phone
from campaigns.replies.conversation import Answer, InboundSms, handle_inbound
from storage.db import Database
from storage.enums import Channel, Direction, InboundState, MessagePurpose, SendState
from storage.tables import Message

log = logging.getLogger(__name__)

# A handling is one short transaction; a claim this old belongs to a request or sweep that died.
CLAIM_STALE_AFTER = timedelta(seconds=30)
# A reply this long unhandled is no longer being answered by its webhook request: the sweeper takes it.
SWEEP_AFTER = timedelta(seconds=30)
# Twilio drops a webhook answer that takes longer than this, and may retry the delivery.
TWILIO_WEBHOOK_TIMEOUT = timedelta(seconds=15)
SWEEP_BATCH = 100


@dataclass(frozen=True)
class Handled:
    """A committed conversation step: its answer (None: silence) and, when texted over REST, its staged row."""

    answer: Answer | None
    staged: StagedAnswer | None = None


@dataclass(frozen=True)
class StagedAnswer:
    message_id: int
    outgoing: Outgoing


@dataclass(frozen=True)
class Settled:
    """What a delivery of a reply that someone else claimed gets."""

    handled: bool  # False: the handling is not committed (under way, or just given back)
    answer: str | None = None  # the stored TwiML answer, for a retry of one whose answer Twilio dropped


def new_owner(kind: str) -> str:
    """A claim owner unique to one request or sweep."""
    return f"{kind}:{uuid.uuid4().hex}"


def store_reply(db: Database, *, sid: str, sender: str, body: str, raw: dict[str, Any], now: datetime) -> int:
    """The id of the stored message, stored now unless this MessageSid already was; database errors propagate."""
    try:
        with db.transaction() as session:
            seen = _stored(sid, session)
            if seen is not None:
                return seen
            message = Message(
                direction=Direction.INBOUND,
                channel=Channel.SMS,
                purpose=MessagePurpose.REPLY,
                address=sender,
                body=body,
                provider_id=sid,
                inbound_state=InboundState.RECEIVED,
                raw=raw,
                created_at=now,
                updated_at=now,
            )
            session.add(message)
            session.flush()
            return message.id
    except IntegrityError:  # the same delivery arrived concurrently and was stored first
        with db.transaction() as session:
            seen = _stored(sid, session)
        if seen is None:
            raise
        return seen


def _stored(sid: str, session: Session) -> int | None:
    return session.scalar(
        select(Message.id).where(Message.channel == Channel.SMS, Message.provider_id == sid)
    )


def claim_reply(db: Database, message_id: int, *, owner: str, now: datetime) -> bool:
    """Take the reply to handle it: from ``received``, or from a claim gone stale. False: someone else has it."""
    claimable = or_(
        Message.inbound_state == InboundState.RECEIVED,
        and_(Message.inbound_state == InboundState.PROCESSING, Message.claimed_at < now - CLAIM_STALE_AFTER),
    )
    with db.transaction() as session:
        result = session.execute(
            update(Message)
            .where(Message.id == message_id, Message.direction == Direction.INBOUND, claimable)
            .values(inbound_state=InboundState.PROCESSING, claimed_by=owner, claimed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def handle_claimed(
    db: Database, message_id: int, *, owner: str, clock: Clock, over_rest: bool = False
) -> Handled | None:
    """The conversation step of a claimed reply, committed with its answer; None when the claim was lost."""
    try:
        return _handle_once(db, message_id, owner=owner, clock=clock, over_rest=over_rest)
    except IntegrityError:
        # Two messages of one conversation at the same instant: the other one has committed by now, so handling
        # this one again sees it. The claim is still ours (the rollback restored it).
        return _handle_once(db, message_id, owner=owner, clock=clock, over_rest=over_rest)


def _handle_once(
    db: Database, message_id: int, *, owner: str, clock: Clock, over_rest: bool
) -> Handled | None:
    with db.transaction() as session:
        finished = session.execute(
            update(Message)
            .where(
                Message.id == message_id,
                Message.inbound_state == InboundState.PROCESSING,
                Message.claimed_by == owner,
            )
            .values(inbound_state=InboundState.PROCESSED, updated_at=clock.now())
            .execution_options(synchronize_session=False)
        )
        if not finished.rowcount:  # type: ignore[attr-defined]
            return None  # taken over as stale: the taker handles it
        inbound = session.get(Message, message_id)
        assert inbound is not None
        sms = InboundSms(inbound.address, inbound.body or "", inbound.id)
        # The time the person wrote is the time of the answer (a reply swept up later is not late for it).
        answer = handle_inbound(sms, now=inbound.created_at, session=session)
        staged = _store_answer(inbound, answer, over_rest, clock.now(), session) if answer else None
        # When the handling ended: a retry compares it with Twilio's webhook timeout.
        inbound.updated_at = clock.now()
        session.flush()
        return Handled(answer, staged)


def _store_answer(
    inbound: Message, answer: Answer, over_rest: bool, now: datetime, session: Session
) -> StagedAnswer | None:
    """The answer's outbound row: handed to Twilio in TwiML, or staged ("sending") before the REST call."""
    message = Message(
        direction=Direction.OUTBOUND,
        channel=Channel.SMS,
        purpose=answer.purpose,
        invitation_id=answer.invitation_id,
        contact_id=inbound.contact_id,
        reply_to_id=inbound.id,
        address=inbound.address,
        body=answer.text,
        send_state=SendState.SENDING if over_rest else SendState.TWIML,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    session.flush()
    return (
        StagedAnswer(message.id, Outgoing(Channel.SMS, inbound.address, answer.text)) if over_rest else None
    )


def release_claim(db: Database, message_id: int, *, owner: str) -> None:
    """Give a failed handling back for the next retry or sweep (a no-op if the claim is not ours any more)."""
    with db.transaction() as session:
        session.execute(
            update(Message)
            .where(
                Message.id == message_id,
                Message.inbound_state == InboundState.PROCESSING,
                Message.claimed_by == owner,
            )
            .values(inbound_state=InboundState.RECEIVED, claimed_by=None, claimed_at=None)
            .execution_options(synchronize_session=False)
        )


def settled_reply(db: Database, message_id: int) -> Settled:
    with db.transaction() as session:
        inbound = session.get(Message, message_id)
        if inbound is None or inbound.inbound_state is not InboundState.PROCESSED:
            return Settled(handled=False)
        if inbound.updated_at - inbound.created_at < TWILIO_WEBHOOK_TIMEOUT:
            return Settled(handled=True)  # answered in time: Twilio has that answer, the person got it
        answer = session.scalar(
            select(Message.body)
            .where(Message.reply_to_id == message_id, Message.send_state == SendState.TWIML)
            .order_by(Message.id.desc())
            .limit(1)
        )
        return Settled(handled=True, answer=answer)


# --- the sweeper -------------------------------------------------------------------------------------------


def sweep_inbound(
    db: Database, transports: Mapping[Channel, Transport], *, clock: Clock, limit: int = SWEEP_BATCH
) -> int:
    """Handle replies left unhandled (their handling failed, or its process died); how many were handled.

    Their webhook requests have answered long ago, so an answer is texted over the REST API: staged as an
    outbound row in the handling's transaction, sent after its commit, recorded in a transaction of its own.
    """
    now = clock.now()
    left = or_(
        and_(Message.inbound_state == InboundState.RECEIVED, Message.created_at < now - SWEEP_AFTER),
        and_(Message.inbound_state == InboundState.PROCESSING, Message.claimed_at < now - CLAIM_STALE_AFTER),
    )
    with db.transaction() as session:
        ids = list(
            session.scalars(
                select(Message.id)
                .where(
                    Message.direction == Direction.INBOUND,
                    Message.channel == Channel.SMS,
                    Message.purpose == MessagePurpose.REPLY,
                    left,
                )
                .order_by(Message.id)  # one person's messages in the order they came
                .limit(limit)
            )
        )
    owner = new_owner("sweep")
    handled = 0
    for message_id in ids:
        if not claim_reply(db, message_id, owner=owner, now=clock.now()):
            continue  # handled meanwhile by a retry of Twilio's
        try:
            result = handle_claimed(db, message_id, owner=owner, clock=clock, over_rest=True)
        except Exception:
            log.exception("handling inbound message %s failed again; the next sweep retries it", message_id)
            release_claim(db, message_id, owner=owner)
            continue
        if result is None:
            continue
        handled += 1
        if result.staged is not None:
            send_staged_answer(db, transports[Channel.SMS], result.staged, clock=clock)
    if handled:
        log.info("swept up %d inbound SMS whose handling had failed", handled)
    return handled


def send_staged_answer(db: Database, transport: Transport, staged: StagedAnswer, *, clock: Clock) -> None:
    """Text one staged answer and record what the provider said (the adapter's errors say what they mean).

    No transaction is open during the call. An uncertain answer (a timeout, a 5xx) is recorded ``unknown``, not
    resent: a second copy of "What is the main reason..." is worse than none.
    """
    provider_id: str | None = None
    error: SendError | None = None
    try:
        provider_id = transport.send(staged.outgoing)
    except SendError as failure:
        error = failure
    except Exception as failure:  # a bug in the adapter must not lose the bookkeeping
        log.exception("channel adapter failed unexpectedly")
        error = UncertainSendError(f"adapter error: {type(failure).__name__}")
    if error is not None:
        log.warning("answer to %s not sent: %s", mask_phone(staged.outgoing.to), error)
    state = _send_state(error)
    with db.transaction() as session:
        session.execute(
            update(Message)
            .where(Message.id == staged.message_id, Message.send_state == SendState.SENDING)
            .values(
                send_state=state,
                provider_id=provider_id,
                error_code=error.code if error else None,
                updated_at=clock.now(),
            )
            .execution_options(synchronize_session=False)
        )
        if provider_id:
            apply_held([provider_id], now=clock.now(), session=session)


def _send_state(error: SendError | None) -> SendState:
    if error is None:
        return SendState.SENT
    if isinstance(error, PermanentSendError):
        return SendState.REJECTED
    if isinstance(error, TemporarySendError):
        return SendState.FAILED
    return SendState.UNKNOWN
