"""Claims whose worker died: settled from the evidence, never by blindly sending again.

No message row means nothing was sent: requeue. A message row is checked against the provider's log: completed
if it went out, requeued if not; a provider without a log (SMTP) puts the invitation up for review instead of
risking a second message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.channels.base import Transport
from campaigns.dispatch.outbox import MessageStatus, complete, requeue
from storage.db import Database
from storage.enums import Channel, Direction, InvitationState
from storage.tables import Invitation, Message

log = logging.getLogger(__name__)


def recover_stale_claims(
    db: Database, transports: Mapping[Channel, Transport], *, now: datetime, claim_timeout: timedelta
) -> int:
    """Settle claims older than the claim timeout (their worker died); returns how many were settled."""
    cutoff = now - claim_timeout
    with db.transaction() as session:
        stale = session.scalars(
            select(Invitation)
            .where(Invitation.state == InvitationState.CLAIMED, Invitation.claimed_at < cutoff)
            .order_by(Invitation.id)
            .limit(1000)
            .with_for_update(skip_locked=True)
        ).all()
        for invitation in stale:
            _settle(invitation, transports, now, session=session)
        return len(stale)


def _settle(
    invitation: Invitation, transports: Mapping[Channel, Transport], now: datetime, *, session: Session
) -> None:
    assert invitation.claimed_at is not None
    traces = session.scalars(
        select(Message)
        .where(
            Message.invitation_id == invitation.id,
            Message.direction == Direction.OUTBOUND,
            Message.purpose == "invitation",
            Message.created_at >= invitation.claimed_at,
            Message.status.in_([MessageStatus.SENDING, MessageStatus.UNKNOWN, MessageStatus.SENT]),
        )
        .order_by(Message.id)
    ).all()
    if not traces:
        requeue(invitation, now, now)
        invitation.last_error = "claim expired before anything was sent; requeued"
        return
    trace = traces[-1]
    if trace.status == MessageStatus.SENT and trace.provider_id:
        complete(invitation, trace, trace.provider_id, trace.created_at, session=session)
        return
    transport = transports.get(trace.channel)
    try:
        found = (
            transport.find_sent(trace.address, trace.body or "", invitation.claimed_at) if transport else None
        )
    except Exception as error:  # the provider's log is unavailable: decide at a later run, send nothing now
        log.warning(
            "cannot check invitation %s against the provider log yet: %s",
            invitation.id,
            type(error).__name__,
        )
        return
    if found is None:
        invitation.state = InvitationState.REVIEW
        invitation.last_error = (
            f"the worker stopped while sending by {trace.channel}; the provider keeps no log to check "
            "whether it went out, so it is held for review instead of risking a second message"
        )
    elif found:
        complete(invitation, trace, found[0], trace.created_at, session=session)
        invitation.last_error = "completed from the provider's log after the worker stopped"
    else:
        trace.status = MessageStatus.NOT_SENT
        requeue(invitation, now, now)
        invitation.last_error = "the provider never received it; requeued"
