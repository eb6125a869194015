"""Bulk loaders for the facts eligibility needs, a chunk of contacts at a time (no query per contact)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from campaigns.planning.decide import ContactView
from campaigns.planning.eligibility import ContactFacts
from storage.enums import (
    Channel,
    ConsentStatus,
    DeliveryStatus,
    Direction,
    InvitationState,
    MessagePurpose,
    SendState,
)
from storage.lists import among
from storage.tables import PENDING_INVITATION_STATES, Consent, Contact, Invitation, Message


def last_surveyed(contact_ids: Collection[int], *, session: Session) -> dict[int, datetime]:
    """When each contact was last sent a survey by any campaign.

    A survey held for review may have gone out (its worker died after the provider took it, and the provider
    keeps no log to ask): it counts as sent when it went to review, so the fatigue rule never lets a second
    survey follow one the person may well have.
    """
    if not contact_ids:
        return {}
    maybe_sent = case((Invitation.state == InvitationState.REVIEW, Invitation.updated_at), else_=None)
    at = func.coalesce(Invitation.sent_at, maybe_sent)
    rows = session.execute(
        select(Invitation.contact_id, func.max(at))
        .where(
            among(Invitation.contact_id, contact_ids, session=session),
            or_(Invitation.sent_at.is_not(None), Invitation.state == InvitationState.REVIEW),
        )
        .group_by(Invitation.contact_id)
    )
    return {contact_id: at for contact_id, at in rows if at is not None}


def opted_out_addresses(addresses: Iterable[str], *, session: Session) -> set[tuple[Channel, str]]:
    """The (channel, address) pairs of `addresses` whose owner opted out, on any channel.

    Every channel is named so that the lookup goes through the consents' (channel, address) index: by address
    alone the database read every consent, once per planned range of a large base.
    """
    wanted = {a for a in addresses if a}
    if not wanted:
        return set()
    rows = session.execute(
        select(Consent.channel, Consent.address).where(
            Consent.channel.in_(list(Channel)),
            among(Consent.address, wanted, session=session),
            Consent.status == ConsentStatus.OPTED_OUT,
        )
    )
    return {(channel, address) for channel, address in rows}


def numbers_told(phones: Iterable[str | None], *, session: Session) -> set[str]:
    """The numbers a survey text or reminder went to: each was told how to opt out by the first of them.

    Only texts the provider took count, and not those the carrier then reported undelivered or failed: one
    that may not have reached the phone leaves the next text saying it again.
    """
    wanted = {p for p in phones if p}
    if not wanted:
        return set()
    rows = session.scalars(
        select(Message.address)
        .where(
            among(Message.address, wanted, session=session),
            Message.direction == Direction.OUTBOUND,
            Message.channel == Channel.SMS,
            Message.purpose.in_((MessagePurpose.INVITATION, MessagePurpose.REMINDER)),
            Message.send_state == SendState.SENT,
            or_(
                Message.delivery_status.is_(None),
                Message.delivery_status.not_in((DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)),
            ),
        )
        .distinct()
    )
    return set(rows)


def contact_facts(
    contacts: Collection[Contact], *, session: Session, told: bool = False
) -> dict[int, ContactFacts]:
    """Facts for each contact, keyed by contact id; ``told``: also whether its phone was told about STOP."""
    told_numbers = numbers_told([c.phone for c in contacts], session=session) if told else set()
    surveyed = last_surveyed([c.id for c in contacts], session=session)
    opted_out = opted_out_addresses([a for c in contacts for a in (c.phone, c.email) if a], session=session)
    return {
        c.id: ContactFacts(
            phone=c.phone,
            email=c.email,
            opted_out_at=c.opted_out_at,
            opted_out_addresses=frozenset(p for p in opted_out if p[1] in (c.phone, c.email)),
            last_surveyed_at=latest(surveyed.get(c.id), c.last_surveyed_at),
            sms_told=c.phone in told_numbers,
        )
        for c in contacts
    }


def latest(ours: datetime | None, elsewhere: datetime | None) -> datetime | None:
    """The later of our last survey and the one another tool reported (`contacts.last_surveyed_at`)."""
    if ours is None or elsewhere is None:
        return ours or elsewhere
    return max(ours, elsewhere)


def contacts_with_pending_invitations(
    contact_ids: Collection[int], *, except_campaign: int | None, session: Session
) -> set[int]:
    """The contacts of `contact_ids` with a survey queued (by another campaign than `except_campaign`).

    Filtered by the contact ids alone and the state checked here: a condition on the state would let the
    database walk the index of every queued invitation (SQLite without statistics for the table does), which
    grows with the outbox while a contact has only a few invitations.
    """
    if not contact_ids:
        return set()
    query = select(Invitation.contact_id, Invitation.state, Invitation.campaign_id).where(
        among(Invitation.contact_id, contact_ids, session=session)
    )
    return {
        contact_id
        for contact_id, state, campaign_id in session.execute(query)
        if state in PENDING_INVITATION_STATES and campaign_id != except_campaign
    }


def contact_view(contact: Contact, facts: ContactFacts) -> ContactView:
    return ContactView(
        contact_id=contact.id,
        properties=contact.properties,
        created_at=contact.created_at,
        customer_since=contact.customer_since,
        facts=facts,
        test=contact.test,
    )
