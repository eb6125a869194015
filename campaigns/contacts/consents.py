"""Channel consents: an opt-out belongs to the address (phone number, email), whoever the contact row is.

``consents`` holds the state now, one row per channel and address; every change request is also written to the
ledger, ``consent_changes``, with its time, source (:class:`storage.enums.ConsentSource`), what was read
("STOP", "STOP TEXTING", "one-click", "21610") and the message that caused it. The ledger is what
`nps contacts why` shows and what a person's export carries (:func:`ledger`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from campaigns.events import Event, emit_after_commit
from storage.enums import Channel, ConsentSource, ConsentStatus
from storage.tables import Consent, ConsentChange, Contact

_SOURCE_LENGTH = 40  # consents.source


@dataclass(frozen=True)
class Cause:
    """Why a consent changes: the source, what was read or clicked, and the message behind it."""

    source: ConsentSource
    detail: str = ""
    message_id: int | None = None

    def label(self, channel: Channel) -> str:
        """The short form kept on ``consents.source``: "sms:STOP", "email:one-click", "twilio-21610"."""
        if self.source is ConsentSource.TWILIO_21610:
            return (self.detail or "twilio-21610")[:_SOURCE_LENGTH]
        return f"{channel.value}:{self.detail or self.source.value}"[:_SOURCE_LENGTH]


log = logging.getLogger(__name__)


def set_consent(
    channel: Channel, address: str, status: ConsentStatus, *, cause: Cause, at: datetime, session: Session
) -> bool:
    """Record a consent change request in the ledger and the state; True when the state changed by it.

    A repeated request (a second STOP) is in the ledger too, but changes nothing: the caller confirms once.
    """
    consent = session.scalar(select(Consent).where(Consent.channel == channel, Consent.address == address))
    if consent is None:
        column = Contact.phone if channel is Channel.SMS else Contact.email
        contact_id = session.scalar(select(Contact.id).where(column == address).limit(1))
        consent = Consent(channel=channel, address=address, contact_id=contact_id)
        session.add(consent)
    changed = consent.status is not status
    session.add(
        ConsentChange(
            channel=channel,
            address=address,
            contact_id=consent.contact_id,
            status=status,
            source=cause.source,
            detail=cause.detail[:200],
            message_id=cause.message_id,
            changed_at=at,
        )
    )
    if changed:
        event = Event.OPTED_OUT if status is ConsentStatus.OPTED_OUT else Event.OPTED_IN
        emit_after_commit(
            session,
            log,
            event,
            channel=channel,
            address=address,
            contact=consent.contact_id,
            source=cause.label(channel),
        )
        consent.status = status
        consent.source = cause.label(channel)
        consent.changed_at = at
    session.flush()
    return changed


def opt_out_address(channel: Channel, address: str, *, cause: Cause, at: datetime, session: Session) -> bool:
    return set_consent(channel, address, ConsentStatus.OPTED_OUT, cause=cause, at=at, session=session)


def ledger(contact: Contact, *, session: Session) -> list[ConsentChange]:
    """Every consent change of the contact's phone number and email, and of rows tied to it, oldest first."""
    mine = [ConsentChange.contact_id == contact.id]
    if contact.phone:
        mine.append((ConsentChange.channel == Channel.SMS) & (ConsentChange.address == contact.phone))
    if contact.email:
        mine.append((ConsentChange.channel == Channel.EMAIL) & (ConsentChange.address == contact.email))
    return list(
        session.scalars(
            select(ConsentChange).where(or_(*mine)).order_by(ConsentChange.changed_at, ConsentChange.id)
        )
    )


def ledger_lines(contact: Contact, *, session: Session) -> list[str]:
    """The consent section of `nps contacts why`: one line per change, addresses as stored (an admin's view)."""
    changes = ledger(contact, session=session)
    if not changes:
        return ["consent: no opt-out or opt-in recorded"]
    lines = ["consent ledger:"]
    for change in changes:
        what = "opted out" if change.status is ConsentStatus.OPTED_OUT else "opted in"
        said = f" ({change.detail})" if change.detail else ""
        message = f", message {change.message_id}" if change.message_id else ""
        lines.append(
            f"  {change.changed_at:%Y-%m-%d %H:%M} UTC {change.channel.value} {change.address}: {what} by"
            f" {change.source.value}{said}{message}"
        )
    return lines
