"""The hosted survey page's flow: what a score link shows, what a submitted form records, and unsubscribing.

The web routes (:mod:`service.web.survey`) read the form, check its CSRF token and render; everything they decide
about the survey itself is here, over plain values and the database:

- :func:`load_survey` reads what the pages need about one invitation (:class:`Survey`) in one transaction; a
  token of the wrong shape, an unknown one, or an invitation that never went out is None (a 404 to the reader).
- :func:`parse_score` reads the score a link or form gives: ASCII digits 0-10 only.
- :func:`record_answer` stores what a form says: the score (changeable while there is no comment,
  :func:`campaigns.replies.responses.record_score`), then the comment, and says which step comes next
  (:class:`Outcome`). The comment step asks the question of the score's category and the thank-you is the
  category's closing (:attr:`Survey.question`, :attr:`Survey.thanks`). After expiry answers are still recorded,
  as late: the thank-you says the survey has closed.
- :func:`unsubscribe` opts the address the invitation went to out of its channel, for good.

Nothing here is reached by a GET that writes: reading is :func:`load_survey` and :func:`is_opted_out` only,
which is what makes the pages safe against mail scanners that open every link.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.contacts.consents import Cause, opt_out_address
from campaigns.definitions.json_codec import definition_from_json
from campaigns.followups.opening import has_open_follow_up
from campaigns.messages.per_category import closing_keys, question_keys
from campaigns.messages.templates import template_variables
from campaigns.messages.texts import ContactTexts, contact_texts
from campaigns.privacy import mask_email, mask_phone
from campaigns.replies.responses import (
    ANSWERABLE,
    invitation_by_token,
    is_open,
    record_comment,
    record_score,
    response_for,
)
from storage.db import Database
from storage.enums import Category, Channel, ConsentSource, ConsentStatus, Direction, InvitationState
from storage.tables import Campaign, Consent, Contact, Invitation, Message

__all__ = [
    "Outcome",
    "Survey",
    "is_opted_out",
    "load_survey",
    "parse_score",
    "record_answer",
    "unsubscribe",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Invitation tokens are `secrets.token_urlsafe(16)`; anything else is unknown without asking the database.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# States of an invitation whose link is out there: answerable ones, and a send that could not be confirmed.
_SHOWN = (*ANSWERABLE, InvitationState.REVIEW)


class Outcome(StrEnum):
    """What :func:`record_answer` did with a submitted form."""

    UNKNOWN = "unknown"  # no such survey (any more): the reader gets the unknown-link page
    NEED_SCORE = "need_score"  # nothing stored: the form had no score and none was stored before
    ANSWERED = "answered"  # commented before: the answer is final, nothing changed
    SCORED = "scored"  # the score is stored; the comment step comes next
    COMMENTED = "commented"  # the comment is stored: thank you


@dataclass(frozen=True)
class Survey:
    """What the pages need to know about one invitation, read in one transaction."""

    token: str
    channel: Channel
    texts: ContactTexts  # the campaign's texts, else the catalogue's, in the language of the invitation
    variables: dict[str, object]
    open: bool
    score: int | None  # the stored score, if any
    commented: bool
    address: str | None  # where the invitation went: what unsubscribing opts out
    category: str | None = None  # of the stored score
    follow_up_open: bool = False  # the team has a follow-up of this answer to do
    promoter_link: str | None = None  # the campaign's review or referral page

    def step(self, wanted: int | None) -> str:
        """The form's step: "comment" once a score is stored, unless the link asks for another score ("score")."""
        return "comment" if self.score is not None and wanted in (None, self.score) else "score"

    @property
    def question(self) -> str:
        """The comment step's question, for the stored score's category (:mod:`campaigns.messages.per_category`)."""
        return self.texts.first_text(question_keys(self.category, "page_comment_label"), **self.variables)

    @property
    def thanks(self) -> str:
        """The thank-you text: the closing of the category; a late answer is told that the survey has closed."""
        if not self.open:
            return self.texts.text("thank_you_late", **self.variables)
        keys = closing_keys(self.category, "page_thanks", contact=self.follow_up_open)
        return self.texts.first_text(keys, **{**self.variables, "promoter_link": self.promoter_link or ""})

    @property
    def offers_link(self) -> bool:
        """Whether the thank-you page shows the campaign's promoter link: to promoters, in time, only."""
        return bool(self.promoter_link) and self.open and self.category == Category.PROMOTER

    @property
    def masked_address(self) -> str:
        """The address as the unsubscribe page shows it and the log records it."""
        return mask_phone(self.address) if self.channel is Channel.SMS else mask_email(self.address)


def parse_score(raw: str | None) -> int | None:
    """A score 0-10 written in ASCII digits ("７" and "٣" are digits to Python's int(), not to us), else None."""
    if raw is None or not raw.strip().isascii() or not raw.strip().isdigit() or len(raw.strip()) > 2:
        return None
    value = int(raw.strip())
    return value if value <= 10 else None


def load_survey(token: str, *, db: Database, now: datetime, any_state: bool = False) -> Survey | None:
    """The survey of ``token``; None when unknown or (unless ``any_state``) not out there to be answered."""
    if not _TOKEN.fullmatch(token):
        return None
    with db.transaction() as session:
        invitation = invitation_by_token(token, session=session)
        if invitation is None or not (any_state or invitation.state in _SHOWN):
            return None
        return _describe(session, invitation, now)


def record_answer(token: str, score: int | None, comment: str, *, db: Database, now: datetime) -> Outcome:
    """Store what a submitted form says (``comment`` "" for none), once more if a concurrent request won a race."""
    return _retrying(db, lambda session: _record(session, token, score, comment, now))


def unsubscribe(survey: Survey, *, one_click: bool, db: Database, now: datetime) -> None:
    """Opt the address ``survey`` went to out of its channel, for good.

    ``one_click`` is the RFC 8058 POST a mail provider sends after the person pressed its own Unsubscribe
    button; otherwise the person confirmed on our page. The consent records which.
    """
    address, channel = survey.address, survey.channel
    if address is None:
        raise ValueError("a survey without an address cannot be unsubscribed")
    source = f"{channel.value}:{'one-click' if one_click else 'unsubscribe-page'}"
    cause = Cause(ConsentSource.UNSUBSCRIBE_LINK, "one-click" if one_click else "unsubscribe-page")
    _retrying(db, lambda session: opt_out_address(channel, address, cause=cause, at=now, session=session))
    log.info("unsubscribed %s from %s surveys (%s)", survey.masked_address, channel.value, source)


def is_opted_out(survey: Survey, *, db: Database) -> bool:
    with db.transaction() as session:
        status = session.scalar(
            select(Consent.status).where(Consent.channel == survey.channel, Consent.address == survey.address)
        )
    return status is ConsentStatus.OPTED_OUT


def _record(session: Session, token: str, score: int | None, comment: str, now: datetime) -> Outcome:
    # Locked before the response is read or written, as a text's step does: written first, the response's row
    # would wait for the survey's row (its foreign key) while that step waits for the response: a deadlock.
    invitation = invitation_by_token(token, session=session, lock=True)
    if invitation is None or invitation.state not in _SHOWN:
        return Outcome.UNKNOWN
    response = response_for(invitation, session=session)
    if response is not None and response.comment is not None:
        return Outcome.ANSWERED  # commented since the page was read: final, and thanked like the first time
    if score is None and response is None:
        return Outcome.NEED_SCORE
    if score is not None and (response is None or response.score != score):
        response, _ = record_score(
            invitation, score, channel=invitation.channel or Channel.EMAIL, now=now, session=session
        )
    assert response is not None
    if not comment:
        return Outcome.SCORED
    record_comment(response, comment, now=now)
    return Outcome.COMMENTED


def _describe(session: Session, invitation: Invitation, now: datetime) -> Survey:
    contact = session.get(Contact, invitation.contact_id)
    campaign = session.get(Campaign, invitation.campaign_id)
    definition = definition_from_json(campaign.definition) if campaign else None
    response = response_for(invitation, session=session)
    channel = invitation.channel or Channel.EMAIL
    sent_to = session.scalar(
        select(Message.address)
        .where(
            Message.invitation_id == invitation.id,
            Message.direction == Direction.OUTBOUND,
            Message.channel == channel,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    fallback = (contact.phone if channel is Channel.SMS else contact.email) if contact else None
    variables = template_variables(
        contact.name if contact else None,
        contact.properties if contact else {},
        definition.brand if definition else None,
        "",
        locale=(contact.locale if contact else None) or (definition.locale if definition else None),
    )
    return Survey(
        token=invitation.token,
        channel=channel,
        texts=contact_texts(definition, contact.locale if contact else None),
        variables=variables,
        open=is_open(invitation, now),
        score=response.score if response else None,
        commented=bool(response and response.comment is not None),
        address=sent_to or fallback,
        category=response.category if response else None,
        follow_up_open=response is not None and has_open_follow_up(response, session=session),
        promoter_link=definition.promoter_link if definition else None,
    )


def _retrying(db: Database, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a transaction, once more if a concurrent request inserted the same row first."""
    try:
        with db.transaction() as session:
            return work(session)
    except IntegrityError:
        with db.transaction() as session:
            return work(session)
