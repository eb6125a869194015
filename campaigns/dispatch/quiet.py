"""Legal quiet hours at dispatch: hold a text the law does not allow yet, and say until when.

The rules and their intersection with the campaign's window are pure (campaigns.planning.quiet_hours); this
module adds the one fact they need from the database, the texts actually sent to the number in the last 24 hours,
read inside the prepare transaction (no provider is called there).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definitions.model import CampaignDefinition
from campaigns.planning.quiet_hours import LegalWindow, allowed, cap_frees_at, next_allowed
from storage.enums import Channel, Direction, SendState
from storage.tables import Message

# What may have reached the phone: accepted by the provider, or not known not to have been.
_SENT_STATES = (SendState.SENT, SendState.UNKNOWN, SendState.SENDING)


def held_until(
    legal: LegalWindow | None,
    definition: CampaignDefinition,
    zone: ZoneInfo,
    *,
    to: str,
    now: datetime,
    session: Session,
) -> tuple[datetime, str] | None:
    """When the send may go and why it waits, or None when the law allows it now."""
    if legal is None:
        return None
    frees = cap_frees_at(legal, _sent_since(to, now - timedelta(hours=24), session=session), now)
    if frees is not None:
        return next_allowed(definition.send_window, zone, legal, frees), f"held: {legal.describe()}"
    if not allowed(definition.send_window, zone, legal, now):
        return next_allowed(definition.send_window, zone, legal, now), f"held: {legal.describe()}"
    return None


def _sent_since(to: str, since: datetime, *, session: Session) -> list[datetime]:
    query = select(Message.created_at).where(
        Message.address == to,
        Message.direction == Direction.OUTBOUND,
        Message.channel == Channel.SMS,
        Message.send_state.in_(_SENT_STATES),
        Message.created_at > since,
    )
    return list(session.scalars(query))
