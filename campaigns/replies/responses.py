"""Recording answers: a score (changeable while the survey is open), then a comment.

Shared by the SMS conversation and the hosted survey page; sessions are the caller's, nothing commits here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, Text, bindparam, cast, insert, or_, select, update
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.session import make_transient_to_detached

from campaigns.definitions.parsed import campaign_definition
from campaigns.events import Event, emit_after_commit
from campaigns.followups import opening as followups
from campaigns.scores.nps import categorize
from storage.enums import (
    Channel,
    DeliveryStatus,
    Direction,
    InvitationState,
    MessagePurpose,
    SendState,
)
from storage.tables import Campaign, Contact, Invitation, Message, Response

log = logging.getLogger(__name__)

Lock = Literal["wait", "nowait"]
Found = TypeVar("Found", "Surveyed", "SurveyChoice")

# States in which an invitation has reached the person and may be answered (expired ones count as late).
ANSWERABLE = (
    InvitationState.SENT,
    InvitationState.DELIVERED,
    InvitationState.RESPONDED,
    InvitationState.EXPIRED,
)
# What the provider reported for a text that never reached the phone: nobody can be answering it.
UNDELIVERED = (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)


class Unread:
    """The caller has not read the invitation's response (None would say it has none)."""


UNREAD = Unread()


def invitation_by_token(token: str, *, session: Session, lock: bool = False) -> Invitation | None:
    """The invitation of a link's token: the full one (emails) or the short one (SMS); `lock` (PostgreSQL):
    its row locked (``FOR UPDATE``) as it is read, as a text's step locks it, before an answer is written."""
    query = select(Invitation).where(or_(Invitation.token == token, Invitation.short_token == token))
    return session.scalar(query.with_for_update() if lock else query)


@dataclass(frozen=True)
class Surveyed:
    """The survey a reply answers, with what handling the reply reads, all from one query: the contact, the
    response so far, and the campaign's stored definition (as text, see :mod:`campaigns.definitions.parsed`)."""

    invitation: Invitation
    contact: Contact | None
    response: Response | None
    definition: str | None
    locked: bool = False  # the invitation's row is locked (FOR UPDATE) by this query


def latest_sms_invitation(
    phone: str, *, now: datetime, session: Session, lock: Lock | None = None
) -> Surveyed | None:
    """The survey a reply from this number answers: that of the newest survey text (the invitation or its
    reminder) the provider accepted.

    A text still being sent is no answerable survey while an open one was accepted: the person cannot have read
    it, and crediting it would send a survey already "answered". A text in flight counts when no text was ever
    accepted for this number, or when the newest accepted one is of a survey that has closed: then Twilio
    accepted the new text and the reply beat the dispatcher's recording of that answer.

    `lock` (PostgreSQL): the accepted text's survey is locked as it is read (``FOR UPDATE OF invitations``),
    waiting for another transaction's lock or (``nowait``) failing at once; the result says whether the survey
    it returns is locked. The query reads what it joins afresh (``populate_existing``):
    read again under the lock, the response is the one committed meanwhile, not the session's older copy.
    """
    return _choose(_read_surveyed, _SURVEYED, phone, now=now, session=session, lock=lock)


@dataclass(frozen=True)
class SurveyChoice:
    """The survey a reply answers, by id alone: :func:`latest_sms_survey`."""

    invitation_id: int
    locked: bool = False  # the invitation's row is locked (FOR UPDATE) by this query


def latest_sms_survey(
    phone: str, *, now: datetime, session: Session, lock: Lock | None = None
) -> SurveyChoice | None:
    """:func:`latest_sms_invitation`'s choice, reading only ids and the survey's end.

    What PostgreSQL's handling locks the survey with: the step reads the survey's rows once the lock is
    its own (read before, they may be older than what the lock's holder committed), so the locking read
    loads nothing it would throw away.
    """
    return _choose(_read_choice, _CHOICE, phone, now=now, session=session, lock=lock)


def lock_invitation(invitation_id: int, *, session: Session, nowait: bool) -> None:
    """Lock an invitation's row (PostgreSQL: ``FOR UPDATE``, or ``NOWAIT``: lock_not_available at once)."""
    session.connection().execute(_LOCK_INVITATION[nowait], {"invitation_id": invitation_id})


_LOCK_INVITATION = {
    nowait: select(Invitation.id)
    .where(Invitation.id == bindparam("invitation_id"))
    .with_for_update(nowait=nowait)
    for nowait in (False, True)
}


def _choose(
    read: Callable[[Select[Any], str, Session, bool], tuple[Found, datetime | None, int] | None],
    queries: _Queries,
    phone: str,
    *,
    now: datetime,
    session: Session,
    lock: Lock | None,
) -> Found | None:
    """The choice :func:`latest_sms_invitation` describes, over `read`: (what it finds, the survey's
    ``expires_at``, the text's message id) for one of `queries`."""
    accepted = read(queries.accepted[lock], phone, session, lock is not None)
    if accepted is not None and _open(accepted[1], now):
        return accepted[0]  # an open survey was accepted: no text in flight can take its place
    in_flight = read(queries.in_flight, phone, session, False)
    if accepted is None:
        return in_flight[0] if in_flight else None
    if in_flight is not None and in_flight[2] > accepted[2] and not _open(accepted[1], now):
        return in_flight[0]
    return accepted[0]


def _open(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or now < expires_at


def _newest_survey_text_query(
    columns: Sequence[Any], *conditions: ColumnElement[bool], joined: bool
) -> Select[Any]:
    """`columns` of the survey of the newest text to the number bound as ``phone`` that meets `conditions`,
    the text's message id last; `joined`: with the contact, response and campaign the step reads. Built
    once: a reply runs these queries, and building a statement costs more CPU than running it."""
    query = select(*columns, Message.id).join(Message, Message.invitation_id == Invitation.id)
    if joined:
        query = (
            query.outerjoin(Contact, Contact.id == Invitation.contact_id)
            .outerjoin(Response, Response.invitation_id == Invitation.id)
            .outerjoin(Campaign, Campaign.id == Invitation.campaign_id)
            .execution_options(populate_existing=True)
        )
    return (
        query.where(
            Message.direction == Direction.OUTBOUND,
            Message.channel == Channel.SMS,
            Message.address == bindparam("phone"),
            Message.purpose.in_((MessagePurpose.INVITATION, MessagePurpose.REMINDER)),
            *conditions,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class _Queries:
    accepted: dict[Lock | None, Select[Any]]  # key: the lock taken
    in_flight: Select[Any]


def _queries(columns: Sequence[Any], *, joined: bool) -> _Queries:
    accepted = _newest_survey_text_query(
        columns,
        Message.send_state == SendState.SENT,
        or_(Message.delivery_status.is_(None), Message.delivery_status.not_in(UNDELIVERED)),
        Invitation.state.in_(ANSWERABLE),
        joined=joined,
    )
    in_flight = _newest_survey_text_query(
        columns,
        Message.send_state.in_((SendState.SENDING, SendState.UNKNOWN)),
        Invitation.state == InvitationState.CLAIMED,
        joined=joined,
    )
    return _Queries(
        accepted={
            None: accepted,
            "wait": accepted.with_for_update(of=Invitation),
            "nowait": accepted.with_for_update(of=Invitation, nowait=True),
        },
        in_flight=in_flight,
    )


_SURVEYED = _queries((Invitation, Contact, Response, cast(Campaign.definition, Text)), joined=True)
_CHOICE = _queries((Invitation.id, Invitation.expires_at), joined=False)


def _read_surveyed(
    query: Select[Any], phone: str, session: Session, locked: bool
) -> tuple[Surveyed, datetime | None, int] | None:
    row = session.execute(query, {"phone": phone}).first()
    if row is None:
        return None
    invitation, contact, response, definition, message_id = row
    return Surveyed(invitation, contact, response, definition, locked), invitation.expires_at, message_id


def _read_choice(
    query: Select[Any], phone: str, session: Session, locked: bool
) -> tuple[SurveyChoice, datetime | None, int] | None:
    # Columns only: on the session's connection, without the ORM's execution (a third of the statement's CPU).
    row = session.connection().execute(query, {"phone": phone}).first()
    if row is None:
        return None
    invitation_id, expires_at, message_id = row
    return SurveyChoice(invitation_id, locked), expires_at, message_id


def response_for(invitation: Invitation, *, session: Session) -> Response | None:
    return session.scalar(select(Response).where(Response.invitation_id == invitation.id))


def is_open(invitation: Invitation, now: datetime) -> bool:
    return _open(invitation.expires_at, now)


def record_score(
    invitation: Invitation,
    score: int,
    *,
    channel: Channel,
    now: datetime,
    session: Session,
    response: Response | Unread | None = UNREAD,
) -> tuple[Response, bool]:
    """Store or change the score; returns the response and whether it is new.

    A score given or corrected after expiry is kept and marked late (a late correction is a late answer, even
    if the first score came in time). Once commented, the score is final. `response`: the invitation's response
    (or None) when the caller has just read it under the invitation's lock, so that it is not read again.
    """
    if isinstance(response, Unread):
        response = response_for(invitation, session=session)
    created = response is None
    if response is None:
        response = _insert_response(invitation, score, channel, now, session)
    elif response.comment is None:
        response.score, response.category = score, categorize(score)
        response.late = response.late or not is_open(invitation, now)
        response.answered_at, response.updated_at = now, now
    _mark_responded(invitation, now, session)
    session.flush()
    definition = campaign_definition(invitation.campaign_id, session=session)
    # eNPS: the invitation id and the score would tie the answer to the "survey sent" line naming the number.
    anonymous = definition is not None and definition.anonymous
    emit_after_commit(
        session,
        log,
        Event.REPLY_RECORDED,
        words=None if created else "score changed",
        invitation=None if anonymous else invitation.id,
        response=response.id,
        # A stored definition carries its campaign's name (campaigns are applied by name): no read of the row.
        campaign=definition.name
        if definition is not None
        else _campaign_name(invitation.campaign_id, session),
        channel=channel,
        score=None if anonymous else response.score,
        category=None if anonymous else response.category,
        late=response.late or None,
    )
    followups.on_score(response, now=now, session=session, new=created)
    return response, created


def _insert_response(
    invitation: Invitation, score: int, channel: Channel, now: datetime, session: Session
) -> Response:
    """A first answer, inserted with Core and handed back as the session's own row (no unit of work: a reply's
    flushes were a fifth of its CPU). Later changes to it (the comment) are the ORM's as usual."""
    contact = session.get(Contact, invitation.contact_id) if invitation.contact_id is not None else None
    values = {
        "invitation_id": invitation.id,
        "contact_id": invitation.contact_id,
        "campaign_id": invitation.campaign_id,
        "channel": channel,
        "score": score,
        "category": categorize(score),
        "late": not is_open(invitation, now),
        "contact_snapshot": dict(contact.properties) if contact else {},
        "test": bool(contact and contact.test),  # kept out of the statistics even if the contact goes
        "answered_at": now,
        "created_at": now,
        "updated_at": now,
    }
    response_id = session.connection().execute(_INSERT_RESPONSE, values).scalar_one()
    unset = {"comment": None, "commented_at": None, "source_key": None, "imported": None}
    response = Response(id=response_id, **values, **unset)
    make_transient_to_detached(response)  # as if loaded: persistent once added, nothing to insert
    session.add(response)
    return response


def _mark_responded(invitation: Invitation, now: datetime, session: Session) -> None:
    """The invitation is answered (an UPDATE of its row, which this step holds locked), and the session's copy
    says so without a flush."""
    responded_at = invitation.responded_at or now
    values = {"invitation_id": invitation.id, "responded_at": responded_at, "now": now}
    session.connection().execute(_RESPONDED, values)
    for key, value in (
        ("state", InvitationState.RESPONDED),
        ("responded_at", responded_at),
        ("updated_at", now),
    ):
        set_committed_value(invitation, key, value)


_INSERT_RESPONSE = (
    insert(Response)
    .values(
        **{
            name: bindparam(name, type_=Response.__table__.c[name].type)
            for name in (
                "invitation_id",
                "contact_id",
                "campaign_id",
                "channel",
                "score",
                "category",
                "late",
                "contact_snapshot",
                "test",
                "answered_at",
                "created_at",
                "updated_at",
            )
        }
    )
    .returning(Response.id)
)
_RESPONDED = (
    update(Invitation)
    .where(Invitation.id == bindparam("invitation_id"))
    .values(
        state=InvitationState.RESPONDED,
        responded_at=bindparam("responded_at", type_=Invitation.responded_at.type),
        updated_at=bindparam("now", type_=Invitation.updated_at.type),
    )
)


def _campaign_name(campaign_id: int, session: Session) -> str | None:
    campaign = session.get(Campaign, campaign_id)
    return campaign.name if campaign is not None else None


def record_comment(
    response: Response, comment: str, *, now: datetime, session: Session | None = None
) -> None:
    response.comment = comment.strip()[:5000]
    response.commented_at = now
    response.updated_at = now
    target = session or object_session(response)
    if target is not None:
        emit_after_commit(
            target, log, Event.COMMENT_RECORDED, response=response.id, characters=len(response.comment)
        )
        followups.on_comment(response, now=now, session=target)
