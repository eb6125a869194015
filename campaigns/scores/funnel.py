"""The response funnel per campaign and channel: planned, sent, delivered, responded, commented, opted out.

The cohort is the invitations due in the period (planned then, whatever happened next); each later step counts
those of them that got that far. One GROUP BY in the database: conditional counts, no rows loaded into Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from campaigns.scores.filters import NO_FILTERS, Filters, Scope
from campaigns.scores.periods import Period
from storage.enums import Channel, ConsentStatus, InvitationState
from storage.tables import Campaign, Consent, Contact, Invitation, Response

NOT_SENT = (InvitationState.PLANNED, InvitationState.CLAIMED, InvitationState.REVIEW)
FAILED = (InvitationState.FAILED, InvitationState.UNDELIVERABLE)


@dataclass(frozen=True)
class FunnelRow:
    campaign: str
    channel: Channel | None  # None: planned before a channel was chosen
    planned: int
    sent: int
    delivered: int
    responded: int
    commented: int
    opted_out: int

    def share(self, step: int) -> float | None:
        """A step as a share of those sent (None when nothing was sent)."""
        return step / self.sent if self.sent else None


def funnel(*, session: Session, period: Period, filters: Filters = NO_FILTERS) -> list[FunnelRow]:
    """One row per campaign and channel with invitations due in the period, by campaign name then channel."""
    scope = Scope.resolve(session, filters)
    sent = Invitation.sent_at.is_not(None)
    delivered = and_(
        sent,
        or_(
            Invitation.delivered_at.is_not(None),
            Invitation.responded_at.is_not(None),
            # email has no delivery receipts: accepted by the mail server and not reported failed
            and_(Invitation.channel == Channel.EMAIL, Invitation.state.not_in(FAILED)),
        ),
    )
    commented = exists().where(Response.invitation_id == Invitation.id, Response.comment.is_not(None))
    address = case((Invitation.channel == Channel.SMS, Contact.phone), else_=Contact.email)
    opted_out = exists().where(
        Consent.channel == Invitation.channel,
        Consent.address == address,
        Consent.status == ConsentStatus.OPTED_OUT,
        Consent.changed_at >= Invitation.sent_at,
    )

    def count(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.count(case((condition, 1)))

    rows = session.execute(
        select(
            Campaign.name,
            Invitation.channel,
            func.count(),
            count(sent),
            count(delivered),
            count(Invitation.responded_at.is_not(None)),
            count(commented),
            count(and_(sent, opted_out)),
        )
        .join(Campaign, Campaign.id == Invitation.campaign_id)
        .join(Contact, Contact.id == Invitation.contact_id)
        .where(*scope.invitations(period, planned=True))
        .group_by(Campaign.name, Invitation.channel)
        .order_by(Campaign.name, Invitation.channel)
    ).all()
    return [
        FunnelRow(name, Channel(channel) if channel else None, *(int(n) for n in counts))
        for name, channel, *counts in rows
    ]
