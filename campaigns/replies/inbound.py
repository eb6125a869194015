"""Inbound SMS replies: stored first, handled exactly once under a claim, and swept up when their handling failed.

What Twilio's webhook semantics ask of us: Twilio retries a webhook only when it got no usable answer (a failed
connection, no answer within its 15 s timeout, and a 5xx only where the operator configured retries), and it
does not retry a 500 by default. So a reply is stored before anything else, and one whose handling failed is
picked up again by us, not left to Twilio.

- :func:`store_reply` writes the raw message (``received``) unless its MessageSid is already stored.
- :func:`claim_reply` is the one way to handle it: a compare-and-set ``received -> processing`` with an owner and
  a time, which one request or sweep wins. A ``processing`` claim older than :data:`CLAIM_STALE_AFTER` belongs
  to a process that died and may be taken over. The webhook does both in one transaction
  (:func:`store_and_claim`): a new MessageSid is inserted already claimed (``INSERT ... ON CONFLICT DO
  NOTHING``), a known one goes through the same compare-and-set.
- :func:`handle_claimed` does the conversation step in one transaction that starts with the compare-and-set
  ``processing (ours) -> processed``: on PostgreSQL that locks the row, so a takeover waits for our commit and
  then finds the reply handled; on SQLite it takes the write lock. Its answer is stored with the reply it answers
  (``reply_to_id``): handed to Twilio in the webhook's TwiML (``twiml``), or staged to be texted over the REST
  API (``sending``).
- Twilio drops a webhook answer after 15 s and does not retry by default. An answer that would leave later than
  :data:`ANSWER_IN_TWIML_WITHIN` after its request came is ``late_twiml`` instead: committed so
  (``answer_by``), or marked so after the commit (:func:`mark_late`) when the commit or the way out took the
  time, or when Twilio hung up. The webhook then answers with empty TwiML and the sweeper texts it over REST.
- :func:`release_claim` gives a failed handling back (``received``) for the next retry or sweep.
- :func:`settled_reply` says what a duplicate delivery gets: nothing yet (the handling is not committed: the
  webhook answers 503), silence (the answer went out in TwiML in time, or over REST), or an answer the retry
  takes to give in its own TwiML: a late one (``late_twiml -> twiml``), or one still ``twiml`` that no retry
  took yet and was given out less than :data:`TWILIO_WEBHOOK_TIMEOUT` ago. Twilio retries only when it got no
  usable answer, and its retry carries the same MessageSid: the request that committed the answer died before
  writing it (or Twilio hung up first). The retry takes it as a compare-and-set that stamps the answer's
  ``claimed_at`` (unused otherwise on an outbound row), so one retry at most gets it, and :func:`mark_late` of
  the request it was first given to then finds it taken and changes nothing. Older than Twilio's timeout, an
  answer never collected stays silent: the request it was meant for has been given up by Twilio either way.
- :func:`sweep_inbound` texts late answers and handles replies left ``received`` longer than
  :data:`SWEEP_AFTER` (or under a stale claim) through the same claim, each answer through the SMS adapter with
  no transaction held open across the provider call.

A late answer goes out once: a retry takes it with ``late_twiml -> twiml``, the sweeper with
``late_twiml -> sending``; whichever compare-and-set changes the row delivers it, the other finds nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
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
# Twilio drops a webhook answer that takes longer than 15 s. An answer ready later than this after its request
# came may miss that (the rest is for the commit and the way back): it is texted over REST instead.
ANSWER_IN_TWIML_WITHIN = timedelta(seconds=12)
# Twilio gives up on a webhook request after this long: a retry later than this after an answer was given out
# is not waiting for that answer.
TWILIO_WEBHOOK_TIMEOUT = timedelta(seconds=15)
SWEEP_BATCH = 100


@dataclass(frozen=True)
class Handled:
    """A committed conversation step: its answer (None: silence), to give in TwiML or staged for REST.

    Neither is set when there is no answer or when it was committed late (the sweeper texts it).
    """

    answer: Answer | None
    twiml: TwimlAnswer | None = None
    staged: StagedAnswer | None = None


@dataclass(frozen=True)
class TwimlAnswer:
    """An answer row in state ``twiml``, for the webhook's TwiML; `taken_at`: when a retry took it (its CAS)."""

    message_id: int
    text: str
    taken_at: datetime | None = None


@dataclass(frozen=True)
class StagedAnswer:
    message_id: int
    outgoing: Outgoing


@dataclass(frozen=True)
class Settled:
    """What a delivery of a reply that someone else claimed gets."""

    handled: bool  # False: the handling is not committed (under way, or just given back)
    twiml: TwimlAnswer | None = None  # an answer this retry took, to give in its TwiML


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


def store_and_claim(
    db: Database, *, sid: str, sender: str, body: str, raw: dict[str, Any], owner: str, now: datetime
) -> tuple[int, bool]:
    """:func:`store_reply` then :func:`claim_reply` in one transaction: (the message id, whether we claimed it).

    A new MessageSid is inserted as ``processing`` under `owner` (nobody else can have seen it); a known one, a
    retry of Twilio's, is claimed by the same compare-and-set as anywhere else. One commit instead of two: the
    stored reply is as durable, and a failure of the claim rolls back nothing that another request relies on.
    """
    on_postgres = db.engine.dialect.name == "postgresql"
    insert_claimed = _INSERT_CLAIMED[on_postgres]
    with db.engine.begin() as connection:  # Core: these prebuilt statements need no unit of work
        # PostgreSQL: looked up first, in the snapshot: an insert that met the row while its handling holds it
        # (PostgreSQL re-checks the unique key against the handling's new row version) would wait for that
        # handling. SQLite has no row locks to wait on: the insert tells a known MessageSid by returning nothing.
        seen = _stored(sid, connection) if on_postgres else None
        if seen is None:
            values = {"address": sender, "body": body, "provider_id": sid, "claimed_by": owner, "raw": raw}
            seen = connection.execute(
                insert_claimed, {**values, "claimed_at": now, "created_at": now, "updated_at": now}
            ).scalar()
            if seen is not None:
                return seen, True
            seen = _stored(sid, connection)
            assert seen is not None  # the conflict was on this MessageSid
        return seen, _claim(connection, seen, owner=owner, now=now)


def _insert_claimed(dialect: Any) -> Any:
    """A new reply, stored already claimed; nothing when its MessageSid is stored (the id comes back otherwise).

    Built once per dialect, the values bound per request: building the statement was much of a reply's CPU.
    """
    fields = ("address", "body", "provider_id", "claimed_by", "claimed_at", "raw", "created_at", "updated_at")
    return (
        dialect.insert(Message)
        .values(
            direction=Direction.INBOUND,
            channel=Channel.SMS,
            purpose=MessagePurpose.REPLY,
            inbound_state=InboundState.PROCESSING,
            **{field: bindparam(field, type_=Message.__table__.c[field].type) for field in fields},
        )
        # The same delivery stored concurrently: this waits for that insert's commit and does nothing.
        .on_conflict_do_nothing(index_elements=["channel", "provider_id"])
        .returning(Message.id)
    )


_INSERT_CLAIMED = {False: _insert_claimed(sqlite), True: _insert_claimed(postgresql)}  # key: on PostgreSQL
_STORED = select(Message.id).where(Message.channel == Channel.SMS, Message.provider_id == bindparam("sid"))


def _stored(sid: str, connection: Connection | Session) -> int | None:
    stored: int | None = connection.execute(_STORED, {"sid": sid}).scalar()
    return stored


def claim_reply(db: Database, message_id: int, *, owner: str, now: datetime) -> bool:
    """Take the reply to handle it: from ``received``, or from a claim gone stale. False: someone else has it."""
    with db.engine.begin() as connection:
        return _claim(connection, message_id, owner=owner, now=now)


def _claim(connection: Connection, message_id: int, *, owner: str, now: datetime) -> bool:
    values = {"message_id": message_id, "owner": owner, "now": now, "stale_before": now - CLAIM_STALE_AFTER}
    return bool(connection.execute(_CLAIM, values).rowcount)


# received -> processing, or a stale processing claim taken over; built once, bound per reply.
_CLAIM = (
    update(Message)
    .where(
        Message.id == bindparam("message_id"),
        Message.direction == Direction.INBOUND,
        or_(
            Message.inbound_state == InboundState.RECEIVED,
            and_(
                Message.inbound_state == InboundState.PROCESSING,
                Message.claimed_at < bindparam("stale_before", type_=Message.claimed_at.type),
            ),
        ),
    )
    .values(
        inbound_state=InboundState.PROCESSING,
        claimed_by=bindparam("owner", type_=Message.claimed_by.type),
        claimed_at=bindparam("now", type_=Message.claimed_at.type),
        updated_at=bindparam("now", type_=Message.updated_at.type),
    )
)


def handle_claimed(
    db: Database,
    message_id: int,
    *,
    owner: str,
    clock: Clock,
    over_rest: bool = False,
    answer_by: datetime | None = None,
) -> Handled | None:
    """The conversation step of a claimed reply, committed with its answer; None when the claim was lost.

    The answer is for TwiML unless `over_rest`; one ready after `answer_by` is committed ``late_twiml``.

    On PostgreSQL the step locks the survey the reply answers. Taken at once, as almost always; held by another
    transaction (another message of the same person being handled, the dispatcher recording a send), the step
    starts again and waits for it, but not past LOCK_WAIT: a burst of one person's texts waiting on a lock would
    otherwise hold every thread that handles webhooks, and keep everybody else's replies waiting too. One that
    gives up raises (lock_not_available): its reply stays stored for Twilio's retry or the sweeper.
    """
    handle = partial(
        _handle_once, db, message_id, owner=owner, clock=clock, over_rest=over_rest, answer_by=answer_by
    )
    try:
        return handle(lock_wait=None)
    except IntegrityError:
        # Two messages of one conversation at the same instant: the other one has committed by now, so handling
        # this one again sees it. The claim is still ours (the rollback restored it).
        return handle(lock_wait=LOCK_WAIT)
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        return handle(lock_wait=LOCK_WAIT)


# How long a reply's step waits for its survey's lock before it gives up (well within Twilio's 15 s).
LOCK_WAIT = timedelta(seconds=2)
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: FOR UPDATE NOWAIT, or lock_timeout, met a lock held elsewhere


def _handle_once(
    db: Database,
    message_id: int,
    *,
    owner: str,
    clock: Clock,
    over_rest: bool,
    answer_by: datetime | None,
    lock_wait: timedelta | None,
) -> Handled | None:
    """One go at the step; `lock_wait` None: the survey's lock taken at once or not at all (PostgreSQL)."""
    with db.transaction() as session:
        if lock_wait is not None and db.engine.dialect.name == "postgresql":
            milliseconds = int(lock_wait.total_seconds() * 1000)
            session.connection().exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
        # The compare-and-set hands back what the step needs of the row it changed (RETURNING): no second read.
        inbound = (
            session.connection()
            .execute(_HANDLE, {"message_id": message_id, "owner": owner, "now": clock.now()})
            .first()
        )
        if inbound is None:
            return None  # taken over as stale: the taker handles it
        opt_out_type = str((inbound.raw or {}).get("OptOutType", ""))
        sms = InboundSms(inbound.address, inbound.body or "", inbound.id, opt_out_type)
        # The time the person wrote is the time of the answer (a reply swept up later is not late for it).
        answer = handle_inbound(
            sms, now=inbound.created_at, session=session, wait_for_lock=lock_wait is not None
        )
        now = clock.now()
        if answer is None:
            return Handled(None)
        if over_rest:
            state = SendState.SENDING
        elif answer_by is not None and now > answer_by:
            state = SendState.LATE_TWIML
        else:
            state = SendState.TWIML
        message_id = _store_answer(inbound, answer, state, now, session)
        if state is SendState.SENDING:
            return Handled(
                answer, staged=StagedAnswer(message_id, Outgoing(Channel.SMS, inbound.address, answer.text))
            )
        if state is SendState.TWIML:
            return Handled(answer, twiml=TwimlAnswer(message_id, answer.text))
        return Handled(answer)


# processing (ours) -> processed, handing back what the conversation step reads of the reply.
_HANDLE = (
    update(Message)
    .where(
        Message.id == bindparam("message_id"),
        Message.inbound_state == InboundState.PROCESSING,
        Message.claimed_by == bindparam("owner", type_=Message.claimed_by.type),
    )
    .values(inbound_state=InboundState.PROCESSED, updated_at=bindparam("now", type_=Message.updated_at.type))
    .returning(Message.id, Message.address, Message.body, Message.raw, Message.created_at, Message.contact_id)
)


def _store_answer(
    inbound: Row[Any], answer: Answer, state: SendState, now: datetime, session: Session
) -> int:
    """The answer's outbound row, written before it is handed to Twilio (in TwiML or over REST); its id."""
    values = {
        "purpose": answer.purpose,
        "invitation_id": answer.invitation_id,
        "reply_to_id": inbound.id,
        "address": inbound.address,
        "body": answer.text,
        "send_state": state,
    }
    # On the session's connection: Core, not the ORM's bulk insert (the ORM's pending work is flushed first).
    session.flush()
    message_id: int = (
        session.connection()
        .execute(_INSERT_ANSWER, {**values, "created_at": now, "updated_at": now})
        .scalar_one()
    )
    return message_id


def _insert_answer() -> Any:
    """The answer's insert, built once (a row only inserted needs no unit of work): values bound per request."""
    fields = (
        "purpose",
        "invitation_id",
        "reply_to_id",
        "address",
        "body",
        "send_state",
        "created_at",
        "updated_at",
    )
    columns = Message.__table__.c
    replied = Message.__table__.alias("replied")
    return (
        insert(Message)
        .values(
            direction=Direction.OUTBOUND,
            channel=Channel.SMS,
            # The contact the step tied the reply to (it may have just done so): read in the insert itself.
            contact_id=select(replied.c.contact_id)
            .where(replied.c.id == bindparam("reply_to_id", type_=columns["reply_to_id"].type))
            .scalar_subquery(),
            **{field: bindparam(field, type_=columns[field].type) for field in fields},
        )
        .returning(Message.id)
    )


_INSERT_ANSWER = _insert_answer()


def mark_late(db: Database, answer: TwimlAnswer, *, now: datetime) -> bool:
    """Leave a ``twiml`` answer to the sweeper: the webhook answer carrying it would come too late for Twilio.

    A compare-and-set from ``twiml`` as this request was given it (no retry has taken it since); False when the
    row is not so (nothing changed).
    """
    with db.transaction() as session:
        result = session.execute(
            update(Message)
            .where(
                Message.id == answer.message_id,
                Message.send_state == SendState.TWIML,
                Message.claimed_at.is_(None)
                if answer.taken_at is None
                else Message.claimed_at == answer.taken_at,
            )
            .values(send_state=SendState.LATE_TWIML, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _move_answer(
    db: Database, answer_id: int, expected: SendState, state: SendState, *, now: datetime
) -> bool:
    with db.transaction() as session:
        result = session.execute(
            update(Message)
            .where(Message.id == answer_id, Message.send_state == expected)
            .values(send_state=state, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


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


def settled_reply(
    db: Database, message_id: int, *, clock: Clock, answer_by: datetime | None = None
) -> Settled:
    """What a delivery of a reply someone else claimed gets; a retry before `answer_by` takes a late answer.

    Taking a late answer is the compare-and-set ``late_twiml -> twiml`` against the sweeper's ``late_twiml ->
    sending``; taking one still ``twiml`` (see the module) is a compare-and-set on its ``claimed_at`` against
    other retries and :func:`mark_late`. Both stamp ``claimed_at``: no later retry takes it again.
    """
    with db.transaction() as session:
        state = session.scalar(select(Message.inbound_state).where(Message.id == message_id))
        if state is not InboundState.PROCESSED:
            return Settled(handled=False)
        if answer_by is None or clock.now() > answer_by:
            # Too late to hand anything to Twilio: a late answer stays the sweeper's.
            return Settled(handled=True)
        now = clock.now()
        answer = and_(Message.reply_to_id == message_id, Message.direction == Direction.OUTBOUND)
        late = and_(answer, Message.send_state == SendState.LATE_TWIML)
        lost = and_(
            answer,
            Message.send_state == SendState.TWIML,
            Message.claimed_at.is_(None),
            Message.updated_at >= now - TWILIO_WEBHOOK_TIMEOUT,
        )
        for taking in (late, lost):
            taken = session.execute(
                update(Message)
                .where(taking)
                .values(send_state=SendState.TWIML, claimed_at=now, updated_at=now)
                .returning(Message.id, Message.body)
                .execution_options(synchronize_session=False)
            ).first()
            if taken is not None:
                return Settled(handled=True, twiml=TwimlAnswer(taken.id, taken.body or "", taken_at=now))
        # Its answer went out in TwiML (in time, or to a retry already), or over REST, or there was none.
        return Settled(handled=True)


# --- the sweeper -------------------------------------------------------------------------------------------


def sweep_inbound(
    db: Database, transports: Mapping[Channel, Transport], *, clock: Clock, limit: int = SWEEP_BATCH
) -> int:
    """Text late answers, then handle replies left unhandled (their handling failed, or its process died).

    How many replies it answered or handled. Their webhook requests have answered long ago, so an answer is
    texted over the REST API: staged as an outbound row (in the handling's transaction, or taken from
    ``late_twiml``), sent after that commit, recorded in a transaction of its own.
    """
    late = send_late_answers(db, transports[Channel.SMS], clock=clock, limit=limit)
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
    return late + handled


def send_late_answers(db: Database, transport: Transport, *, clock: Clock, limit: int = SWEEP_BATCH) -> int:
    """Text the answers whose TwiML came too late for Twilio, each taken first; how many were taken."""
    with db.transaction() as session:
        rows = session.execute(
            select(Message.id, Message.address, Message.body)
            .where(Message.send_state == SendState.LATE_TWIML)
            .order_by(Message.id)  # one person's answers in the order they were written
            .limit(limit)
        ).all()
    taken = 0
    for row in rows:
        if not _move_answer(db, row.id, SendState.LATE_TWIML, SendState.SENDING, now=clock.now()):
            continue  # Twilio's retry of the reply took it for its TwiML
        taken += 1
        send_staged_answer(
            db,
            transport,
            StagedAnswer(row.id, Outgoing(Channel.SMS, row.address, row.body or "")),
            clock=clock,
        )
    if taken:
        log.info("texted %d answers over the REST API whose TwiML came too late for Twilio", taken)
    return taken


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
