"""Expiry: a survey nobody answered in time expires; a late answer is still kept (marked late) by the replies."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.dispatch.outbox import AWAITING_ANSWER
from campaigns.events import Event, emit
from storage.enums import InvitationState
from storage.tables import Campaign, Invitation

log = logging.getLogger(__name__)


def expire_invitations(dispatcher: Dispatcher) -> int:
    """Move every survey past its expiry to `expired`; returns how many."""
    now = dispatcher.clock.now()
    statement = (
        update(Invitation)
        .where(Invitation.state.in_(AWAITING_ANSWER), Invitation.expires_at <= now)
        .values(state=InvitationState.EXPIRED, updated_at=now)
        .returning(Invitation.id, Invitation.campaign_id)
        .execution_options(synchronize_session=False)
    )
    with dispatcher.db.transaction() as session:
        expired = session.execute(statement).all()
        campaign_ids = {row[1] for row in expired}
        names = {
            row[0]: row[1]
            for row in session.execute(
                select(Campaign.id, Campaign.name).where(Campaign.id.in_(campaign_ids))
            )
        }
    # One line per campaign, committed: the ids say which surveys (`nps events` tells each one's story).
    by_campaign: dict[int, list[int]] = {}
    for invitation_id, campaign_id in expired:
        by_campaign.setdefault(campaign_id, []).append(invitation_id)
    for campaign_id, ids in sorted(by_campaign.items()):
        shown = ",".join(map(str, sorted(ids)[:20])) + (",..." if len(ids) > 20 else "")
        emit(log, Event.SURVEY_EXPIRED, campaign=names.get(campaign_id), count=len(ids), invitations=shown)
    return len(expired)
