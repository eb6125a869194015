"""A person's data, for a subject access request (GDPR art. 15) or portability (art. 20): `nps contacts export`.

Plain JSON-ready values: the contact as stored, the consent state per address, the consent ledger (every
opt-out and opt-in with its time, channel, address, source and the message that caused it), the responses and
every message to or from the person's addresses. Unmasked: it is for the person, not for a log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from campaigns.contacts.consents import ledger
from campaigns.scores.anonymity import WITHHELD, anonymous_invitations, not_anonymous
from storage.enums import Channel
from storage.tables import Consent, Contact, Message, Response


def person_data(contact: Contact, *, session: Session) -> dict[str, Any]:
    """Everything stored about one contact and their addresses."""
    return {
        "contact": {
            "external_id": contact.external_id,
            "name": contact.name,
            "phone": contact.phone,
            "email": contact.email,
            "locale": contact.locale,
            "timezone": contact.timezone,
            "properties": contact.properties,
            "created_at": _time(contact.created_at),
            "opted_out_at": _time(contact.opted_out_at),
        },
        "consents": [
            {
                "channel": consent.channel.value,
                "address": consent.address,
                "status": consent.status.value,
                "changed_at": _time(consent.changed_at),
            }
            for consent in session.scalars(
                select(Consent).where(_addresses(Consent, contact)).order_by(Consent.id)
            )
        ],
        "consent_ledger": [
            {
                "changed_at": _time(change.changed_at),
                "channel": change.channel.value,
                "address": change.address,
                "status": change.status.value,
                "source": change.source.value,
                "detail": change.detail,
                "message_id": change.message_id,
            }
            for change in ledger(contact, session=session)
        ],
        "responses": [
            {
                "answered_at": _time(response.answered_at),
                "channel": response.channel.value,
                "score": response.score,
                "comment": response.comment,
                "late": response.late,
            }
            for response in session.scalars(
                select(Response)
                .where(Response.contact_id == contact.id, *not_anonymous(session))
                .order_by(Response.answered_at)
            )
        ],
        "messages": _messages(contact, session=session),
    }


def _messages(contact: Contact, *, session: Session) -> list[dict[str, Any]]:
    """Every message to or from the person; the texts of an anonymous campaign's conversation are withheld (the
    score and comment they sent, the follow-up question that names their category)."""
    messages = list(
        session.scalars(
            select(Message)
            .where(or_(Message.contact_id == contact.id, _addresses(Message, contact)))
            .order_by(Message.id)
        )
    )
    withheld = anonymous_invitations(session, (message.invitation_id for message in messages))
    return [
        {
            "id": message.id,
            "at": _time(message.created_at),
            "direction": message.direction.value,
            "channel": message.channel.value,
            "address": message.address,
            "body": WITHHELD if message.invitation_id in withheld else message.body,
        }
        for message in messages
    ]


def _addresses(model: type[Consent] | type[Message], contact: Contact) -> Any:
    wanted = [model.id == -1]  # matches nothing: a contact without phone or email has no addresses
    if contact.phone:
        wanted.append((model.channel == Channel.SMS) & (model.address == contact.phone))
    if contact.email:
        wanted.append((model.channel == Channel.EMAIL) & (model.address == contact.email))
    return or_(*wanted)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
