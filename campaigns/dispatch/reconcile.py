"""Claims whose worker died: settled from the evidence, never by blindly sending again.

The same for every purpose (the survey and its reminder; the flows are in campaigns.dispatch.outbox). No
message row means nothing was sent: put back. A message row is checked against the provider's log: completed if
it went out, put back if not; a provider without a log (SMTP) cannot tell, so the survey is held for review and
a reminder is dropped, instead of risking a second message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.channels.base import Transport
from campaigns.dispatch.outbox import FLOWS, Flow, complete
from storage.db import Database
from storage.enums import Channel, Direction, SendState
from storage.tables import Invitation, Message

log = logging.getLogger(__name__)

# A message in one of these states may have reached the provider.
_MAYBE_SENT = (SendState.SENDING, SendState.UNKNOWN, SendState.SENT)


def recover_stale_claims(
    db: Database, transports: Mapping[Channel, Transport], *, now: datetime, claim_timeout: timedelta
) -> int:
    """Settle claims older than the claim timeout (their worker died); returns how many were settled."""
    cutoff = now - claim_timeout
    settled = 0
    for flow in FLOWS.values():
        with db.transaction() as session:
            stale = session.scalars(
                select(Invitation)
                .where(flow.claimed(), Invitation.claimed_at < cutoff)
                .order_by(Invitation.id)
                .limit(1000)
                .with_for_update(skip_locked=True)
            ).all()
            for invitation in stale:
                _settle(flow, invitation, transports, now, session=session)
            settled += len(stale)
    return settled


def _settle(
    flow: Flow,
    invitation: Invitation,
    transports: Mapping[Channel, Transport],
    now: datetime,
    *,
    session: Session,
) -> None:
    assert invitation.claimed_at is not None
    traces = session.scalars(
        select(Message)
        .where(
            Message.invitation_id == invitation.id,
            Message.direction == Direction.OUTBOUND,
            Message.purpose == flow.purpose,
            Message.created_at >= invitation.claimed_at,
            Message.send_state.in_(_MAYBE_SENT),
        )
        .order_by(Message.id)
    ).all()
    if not traces:
        flow.put_back(invitation, now, now)
        invitation.last_error = "claim expired before anything was sent; requeued"
        return
    trace = traces[-1]
    if trace.send_state is SendState.SENT and trace.provider_id:
        complete(flow, invitation, trace, trace.provider_id, trace.created_at, session=session)
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
        flow.unverifiable(
            invitation,
            f"the worker stopped while sending by {trace.channel}; the provider keeps no log to check "
            "whether it went out",
            now,
        )
    elif found:
        complete(flow, invitation, trace, found[0], trace.created_at, session=session)
        invitation.last_error = "completed from the provider's log after the worker stopped"
    else:
        trace.send_state = SendState.NOT_SENT
        flow.put_back(invitation, now, now)
        invitation.last_error = "the provider never received it; requeued"
