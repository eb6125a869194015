"""Channel consents: an opt-out belongs to the address (phone number, email), whoever the contact row is."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.events import Event, emit_after_commit
from storage.enums import Channel, ConsentStatus
from storage.tables import Consent, Contact

log = logging.getLogger(__name__)


def set_consent(
    channel: Channel, address: str, status: ConsentStatus, *, source: str, at: datetime, session: Session
) -> Consent:
    consent = session.scalar(select(Consent).where(Consent.channel == channel, Consent.address == address))
    if consent is None:
        column = Contact.phone if channel is Channel.SMS else Contact.email
        contact_id = session.scalar(select(Contact.id).where(column == address).limit(1))
        consent = Consent(channel=channel, address=address, contact_id=contact_id)
        session.add(consent)
    if consent.status is not status:
        event = Event.OPTED_OUT if status is ConsentStatus.OPTED_OUT else Event.OPTED_IN
        emit_after_commit(
            session, log, event, channel=channel, address=address, contact=consent.contact_id, source=source
        )
    consent.status = status
    consent.source = source
    consent.changed_at = at
    session.flush()
    return consent


def opt_out_address(
    channel: Channel, address: str, *, source: str, at: datetime, session: Session
) -> Consent:
    return set_consent(channel, address, ConsentStatus.OPTED_OUT, source=source, at=at, session=session)
