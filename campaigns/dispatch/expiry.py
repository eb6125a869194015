"""Expiry: a survey nobody answered in time expires; a late answer is still kept (marked late) by the replies."""

from __future__ import annotations

from sqlalchemy import update

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.dispatch.outbox import AWAITING_ANSWER
from storage.enums import InvitationState
from storage.tables import Invitation


def expire_invitations(dispatcher: Dispatcher) -> int:
    """Move every survey past its expiry to `expired`; returns how many."""
    now = dispatcher.clock.now()
    statement = (
        update(Invitation)
        .where(Invitation.state.in_(AWAITING_ANSWER), Invitation.expires_at <= now)
        .values(state=InvitationState.EXPIRED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    with dispatcher.db.transaction() as session:
        return session.execute(statement).rowcount or 0  # type: ignore[attr-defined]
