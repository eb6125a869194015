"""The SMS conversation: score -> "what is the main reason?" -> comment -> thank-you, plus STOP/START/HELP.

`handle_inbound` is called once per inbound message (after it was stored) and returns the reply text to send
back, or None to stay silent. The rules:

- STOP and the other opt-out keywords and phrases of every shipped locale (:mod:`campaigns.replies.keywords`)
  opt the number out at once and for good; START/YES/UNSTOP opt back in; HELP/INFO say who we are and how to
  stop. These work for any number, surveyed or not, and are written to the consent ledger with the message.
  One confirmation at most: a request that changes nothing (a second STOP) is recorded and not answered.
- With Twilio's Advanced Opt-Out, Twilio answers its keywords itself and says so (``OptOutType``): the change is
  recorded and we stay silent, whatever the reply would otherwise have been.
- A reply goes to the survey of the newest survey text (invitation or reminder) the provider accepted for that
  number (:func:`campaigns.replies.responses.latest_sms_invitation`), chosen again once its row is locked. A
  number we never surveyed gets a polite generic answer.
- A score records the response (a reply after expiry is kept and marked late) and asks the follow-up question of
  its category ("What could we do better?" to a detractor, "What do you like most?" to a promoter); a second
  short score reply ("I meant 8") before the comment replaces the first.
- After the score, the next message that is not a score is the comment, and the closing of its category thanks
  them: a detractor whose follow-up is open is told someone will get in touch, a promoter gets the campaign's
  ``promoter_link`` (:mod:`campaigns.messages.per_category`).
- Anything else gets one clarification per invitation, then silence, so that two bots never loop.

Every reply is a catalogue text looked up with :func:`campaigns.messages.texts.contact_texts` for the campaign of that
newest invitation, so a campaign's own wording (``messages: {en: {ask_comment: ...}}``) is used and the reply
comes in the language the invitation was in; a number without an invitation gets the shipped texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from campaigns.contacts.consents import Cause, set_consent
from campaigns.definitions.model import CampaignDefinition
from campaigns.definitions.parsed import campaign_definition, remember_definition
from campaigns.followups.opening import has_open_follow_up
from campaigns.messages.per_category import closing_keys, question_keys
from campaigns.messages.templates import template_variables
from campaigns.messages.texts import contact_texts
from campaigns.replies.parser import Help, OptIn, OptOut, Score, parse_reply
from campaigns.replies.responses import (
    Lock,
    SurveyChoice,
    Surveyed,
    latest_sms_invitation,
    latest_sms_survey,
    lock_invitation,
    record_comment,
    record_score,
)
from storage.enums import Category, Channel, ConsentSource, ConsentStatus, Direction, MessagePurpose
from storage.tables import Contact, Invitation, Message, Response


@dataclass(frozen=True)
class Answer:
    text: str
    purpose: MessagePurpose  # stored with the outbound message: CONVERSATION or CLARIFICATION
    invitation_id: int | None = None


@dataclass(frozen=True)
class InboundSms:
    from_number: str
    body: str
    message_id: int  # our stored row
    # Twilio's Advanced Opt-Out recognised a keyword and answered it itself: "STOP", "START" or "HELP".
    opt_out_type: str = ""


def handle_inbound(
    sms: InboundSms, *, now: datetime, session: Session, wait_for_lock: bool = True
) -> Answer | None:
    """The step for one inbound message; `wait_for_lock` False: fail at once (PostgreSQL's lock_not_available)
    when another transaction holds the survey's row, instead of waiting for it."""
    surveyed = _answered_invitation(sms, now, session, "wait" if wait_for_lock else "nowait")
    invitation = surveyed.invitation if surveyed else None
    contact = surveyed.contact if surveyed else _contact_by_phone(sms, session)
    if surveyed is not None:
        remember_definition(surveyed.invitation.campaign_id, surveyed.definition, session=session)
    definition = campaign_definition(invitation.campaign_id if invitation else None, session=session)
    locale = (contact.locale if contact else None) or (definition.locale if definition else "en")
    variables = _variables(definition, contact)
    reply = parse_reply(sms.body, locale)

    texts = contact_texts(definition, locale)

    def text(key: str, *more: str) -> str:
        return texts.first_text((key, *more), **variables)

    if sms.opt_out_type:
        _record_twilio_keyword(sms, now, session)
        return None  # Twilio's Advanced Opt-Out has answered already: a TwiML reply would be a second text
    if isinstance(reply, (OptOut, OptIn)):
        opted_out = isinstance(reply, OptOut)
        status = ConsentStatus.OPTED_OUT if opted_out else ConsentStatus.OPTED_IN
        free_text = isinstance(reply, OptOut) and reply.free_text
        cause = Cause(
            ConsentSource.FREE_TEXT if free_text else ConsentSource.KEYWORD, reply.keyword, sms.message_id
        )
        if contact is not None:
            _link_contact(sms, contact, session)
        changed = set_consent(Channel.SMS, sms.from_number, status, cause=cause, at=now, session=session)
        if not changed:
            return None  # one confirmation only: a second STOP (or START) is recorded, not answered
        return Answer(text("opted_out" if opted_out else "opted_in"), MessagePurpose.CONVERSATION)
    if isinstance(reply, Help):
        return Answer(text("help"), MessagePurpose.CONVERSATION)
    if invitation is None:
        return Answer(text("unknown_number"), MessagePurpose.CONVERSATION)
    _link(sms, invitation, session)

    assert surveyed is not None  # read with the invitation, under its lock
    response = surveyed.response
    if isinstance(reply, Score) and (response is None or _replaces_score(sms.body, response.comment)):
        response, _ = record_score(
            invitation, reply.value, channel=Channel.SMS, now=now, session=session, response=response
        )
        keys = ("thank_you_late",) if response.late else question_keys(response.category, "ask_comment")
        return Answer(text(*keys), MessagePurpose.CONVERSATION, invitation.id)
    if response is not None and response.comment is None:
        record_comment(response, sms.body, now=now)
        return Answer(
            text(*_closing(response, definition, session)), MessagePurpose.CONVERSATION, invitation.id
        )
    if response is not None:
        return None  # answered and commented: keep what they send, say nothing more
    if _clarified(invitation, session):
        return None
    return Answer(text("clarify"), MessagePurpose.CLARIFICATION, invitation.id)


def _closing(response: Response, definition: CampaignDefinition | None, session: Session) -> tuple[str, ...]:
    """The closing's keys for this answer's category (:mod:`campaigns.messages.per_category`)."""
    # Only a detractor's closing depends on the follow-up: others save the statement.
    contact = response.category == Category.DETRACTOR and has_open_follow_up(response, session=session)
    link = bool(definition and definition.promoter_link)
    return closing_keys(response.category, "thank_you", contact=contact, link=link)


# Words that may surround a corrected score ("sorry, I meant 8 out of 10"); anything else makes it a comment.
_CORRECTION_WORDS = {
    "i",
    "meant",
    "mean",
    "sorry",
    "actually",
    "oops",
    "correction",
    "make",
    "it",
    "a",
    "an",
    "out",
    "of",
    "ten",
    "score",
    "rather",
    "no",
    "not",
    "is",
    "my",
}


# What Twilio's Advanced Opt-Out says it did (the webhook's OptOutType); HELP changes no consent.
_TWILIO_OPT_OUT_TYPES = {"STOP": ConsentStatus.OPTED_OUT, "START": ConsentStatus.OPTED_IN}


def _record_twilio_keyword(sms: InboundSms, now: datetime, session: Session) -> None:
    status = _TWILIO_OPT_OUT_TYPES.get(sms.opt_out_type.upper())
    if status is None:
        return
    detail = f"{sms.opt_out_type.upper()} (Twilio Advanced Opt-Out)"
    cause = Cause(ConsentSource.KEYWORD, detail, sms.message_id)
    set_consent(Channel.SMS, sms.from_number, status, cause=cause, at=now, session=session)


def _link_contact(sms: InboundSms, contact: Contact, session: Session) -> None:
    """Tie a stored opt-out or opt-in reply to the contact it came from (for the ledger and the export)."""
    session.connection().execute(
        update(Message)
        .where(Message.id == sms.message_id, Message.contact_id.is_(None))
        .values(contact_id=contact.id)
    )


def _replaces_score(body: str, comment: str | None) -> bool:
    """After a score, only a bare score or an explicit correction ("8", "8/10", "I meant 8") replaces it; a reason
    that happens to hold a number ("10 minutes wait", "5 stars") is the comment."""
    if comment is not None:
        return False
    words = re.findall(r"[^\W\d_]+", body.lower())
    return all(word in _CORRECTION_WORDS for word in words)


def _answered_invitation(sms: InboundSms, now: datetime, session: Session, lock: Lock) -> Surveyed | None:
    """The invitation this message answers, locked, and still the one once the lock is ours.

    Locked (PostgreSQL) so that a score and a comment sent together are handled one after the other. While we
    waited for the lock the dispatcher may have recorded a send (or its failure): the choice is made again under
    the lock and, if it moved, the new one is locked in turn. The first choice locks as it reads, by id alone;
    the choice made again reads what the step needs (contact, response, definition) as committed before the
    lock was ours: two statements in all when nothing moved. On SQLite the handling's transaction has held the database's one write lock since its first
    statement (the claim's compare-and-set): nothing can move.
    """
    if session.get_bind().dialect.name == "sqlite":
        return latest_sms_invitation(sms.from_number, now=now, session=session)
    choice = latest_sms_survey(sms.from_number, now=now, session=session, lock=lock)
    if choice is None:
        # A row changed while we waited for its lock is read again as it is now, and dropped if it no longer
        # qualifies: the choice is made once more without the lock, and locked below.
        choice = latest_sms_survey(sms.from_number, now=now, session=session)
    locked = choice.invitation_id if choice is not None and choice.locked else None
    surveyed = None
    for _ in range(_RECHECKS):
        if choice is None:
            return None
        if choice.invitation_id != locked:
            lock_invitation(choice.invitation_id, session=session, nowait=lock == "nowait")
            locked = choice.invitation_id
        surveyed = latest_sms_invitation(sms.from_number, now=now, session=session)
        if surveyed is None or surveyed.invitation.id == locked:
            return surveyed
        choice = SurveyChoice(surveyed.invitation.id)
    return surveyed


# How often the choice of invitation may move while we wait for its lock before we take the latest one.
_RECHECKS = 3


def _contact_by_phone(sms: InboundSms, session: Session) -> Contact | None:
    return session.scalar(select(Contact).where(Contact.phone == sms.from_number).limit(1))


def _variables(definition: CampaignDefinition | None, contact: Contact | None) -> dict[str, object]:
    name = contact.name if contact else None
    properties = contact.properties if contact else {}
    locale = (contact.locale if contact else None) or (definition.locale if definition else None)
    variables = template_variables(
        name, properties, definition.brand if definition else None, "", locale=locale
    )
    return {**variables, "promoter_link": (definition.promoter_link if definition else None) or ""}


def _link(sms: InboundSms, invitation: Invitation, session: Session) -> None:
    """Tie the stored inbound message to the invitation and contact it answers (Core: the row is not loaded)."""
    values = {
        "message_id": sms.message_id,
        "invitation_id": invitation.id,
        "contact_id": invitation.contact_id,
    }
    session.connection().execute(_LINK, values)


_LINK = (
    update(Message)
    .where(Message.id == bindparam("message_id"))
    .values(
        invitation_id=bindparam("invitation_id", type_=Message.invitation_id.type),
        contact_id=bindparam("contact_id", type_=Message.contact_id.type),
    )
)


def _clarified(invitation: Invitation, session: Session) -> bool:
    """Whether this invitation already got its one clarification."""
    count = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.invitation_id == invitation.id,
            Message.direction == Direction.OUTBOUND,
            Message.purpose == MessagePurpose.CLARIFICATION,
        )
    )
    return bool(count)
