"""Legal quiet hours at dispatch: hold a text the law does not allow yet, and say until when.

The rules and their intersection with the campaign's window are pure (campaigns.planning.quiet_hours); this
module adds the one fact they need from the database, the texts actually sent to the number in the last 24 hours,
read inside the prepare transaction (no provider is called there). Where a cap applies, the count is taken under
a lock on the number until the transaction ends: two workers preparing texts to one number at once count one
after the other, so the second sees the first's text (on SQLite a single writer already orders them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from campaigns.definitions.model import CampaignDefinition
from campaigns.planning.quiet_hours import LegalWindow, QuietRule, allowed, cap_frees_at, next_allowed
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
    staged: int = 0,
    session: Session,
) -> tuple[datetime, str] | None:
    """When the send may go and why it waits, or None when the law allows it now.

    `staged`: the texts to `to` the batch has decided on so far; their rows are written with the batch's, after
    this count, and they go now.
    """
    if legal is None:
        return None
    if legal.max_per_24h is not None:
        _lock_number(to, session=session)
    sent = _sent_since(to, now - timedelta(hours=24), session=session) + [now] * staged
    frees = cap_frees_at(legal, sent, now)
    if frees is not None:
        return next_allowed(definition.send_window, zone, legal, frees), f"held: {legal.describe()}"
    if not allowed(definition.send_window, zone, legal, now):
        return next_allowed(definition.send_window, zone, legal, now), f"held: {legal.describe()}"
    return None


def lock_numbers(phones: Iterable[str | None], rules: Mapping[str, QuietRule], *, session: Session) -> None:
    """Lock a batch's numbers up front, in one order for every worker, when a rule caps texts: two batches
    that share two numbers would otherwise each wait for the other's (a deadlock PostgreSQL aborts)."""
    if any(rule.max_per_24h for rule in rules.values()) and session.get_bind().dialect.name == "postgresql":
        numbers = sorted({p for p in phones if p})
        if numbers:
            # One statement for the batch, not one per number: the locks are taken in the array's order (the
            # volatile lock function is evaluated after the sort), the same keys _lock_number takes.
            session.execute(_LOCK_NUMBERS, {"numbers": numbers})


_LOCK_NUMBERS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('sms-cap:' || number, 0)) "
    "FROM unnest(CAST(:numbers AS text[])) WITH ORDINALITY AS batch(number, position) ORDER BY position"
)


def _lock_number(to: str, *, session: Session) -> None:
    """Hold the number's lock until the transaction commits, with the text it stages (PostgreSQL; re-entrant)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"sms-cap:{to}", 0))))


def _sent_since(to: str, since: datetime, *, session: Session) -> list[datetime]:
    query = select(Message.created_at).where(
        Message.address == to,
        Message.direction == Direction.OUTBOUND,
        Message.channel == Channel.SMS,
        Message.send_state.in_(_SENT_STATES),
        Message.created_at > since,
    )
    return list(session.scalars(query))
