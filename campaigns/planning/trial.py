"""A test survey (`nps campaigns test NAME --to ADDRESS`): one real survey to a test address, never counted.

The address becomes a test contact (external_id ``test:<address>``, ``contacts.test``): no campaign's audience
holds it, the statistics leave out its invitations and answers (``responses.test``), and the dispatcher sends
its survey at once, outside the send window and whatever the fatigue rule. A test contact's earlier survey
still waiting is cancelled, so each test is one new survey.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.contacts.store import get_contact_by_external_id
from campaigns.contacts.validation import ContactValidationError, validate_contact
from campaigns.dispatch.outbox import cancel
from campaigns.planning.planner import new_token
from storage.enums import Channel
from storage.tables import PENDING_INVITATION_STATES, Campaign, Contact, Invitation

__all__ = ["TrialError", "plan_trial", "trial_channel"]


class TrialError(ValueError):
    """The address cannot receive a test survey of this campaign; the message says why."""


def trial_channel(address: str) -> Channel:
    return Channel.EMAIL if "@" in address else Channel.SMS


def plan_trial(
    campaign: Campaign, channels: tuple[Channel, ...], address: str, *, session: Session, now: datetime
) -> Invitation:
    """A survey of ``campaign`` due now for the test contact of ``address`` (created or reused)."""
    channel = trial_channel(address)
    if channel not in channels:
        raise TrialError(f"campaign {campaign.name!r} does not send by {channel}")
    try:
        checked = validate_contact(
            {"external_id": "test", "phone" if channel is Channel.SMS else "email": address}
        )
    except ContactValidationError as error:
        raise TrialError("; ".join(e.message for e in error.errors)) from None
    normalised = checked.phone if channel is Channel.SMS else checked.email
    assert normalised is not None
    external_id = f"test:{normalised}"
    contact = get_contact_by_external_id(external_id, session=session)
    if contact is None:
        contact = Contact(external_id=external_id, properties={}, created_at=now, updated_at=now)
        session.add(contact)
    contact.test = True
    contact.phone, contact.email = (normalised, None) if channel is Channel.SMS else (None, normalised)
    session.flush()
    for waiting in session.scalars(
        select(Invitation).where(
            Invitation.contact_id == contact.id, Invitation.state.in_(PENDING_INVITATION_STATES)
        )
    ):
        cancel(waiting, "replaced by a newer test survey", now)
    session.flush()
    invitation = Invitation(
        contact_id=contact.id,
        campaign_id=campaign.id,
        due_at=now,
        token=new_token(),
        created_at=now,
        updated_at=now,
    )
    session.add(invitation)
    session.flush()
    return invitation
