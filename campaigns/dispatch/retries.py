"""How long a temporary failure is retried, and when a survey moves on to the campaign's next channel.

Bounded by time, never by a count of tries (an outage of minutes must not use up a survey):

- each retry waits the exponential back-off (campaigns.ratelimit: 30 s doubling to an hour), or the provider's
  Retry-After when that is longer;
- a channel is retried for `retry_for` from its first failed try for this invitation; then, when the campaign
  has another channel this contact can be reached by, the survey goes by that one;
- the last usable channel is retried until the survey would have expired (its first failed try plus the
  campaign's `expires_after`); only then does the invitation fail, saying why.

Nothing that did not reach the provider counts: a send-window requeue, a channel pause, a claim handed back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.ratelimit import backoff_delay
from storage.enums import Channel, MessagePurpose, SendState
from storage.lists import among
from storage.tables import Message

FailedSince = dict[Channel, datetime]
"""The first temporary failure of an invitation's survey, per channel."""


def failed_since(invitation_ids: Sequence[int], *, session: Session) -> dict[int, FailedSince]:
    """For each invitation, when each channel first failed temporarily for it (one query per batch)."""
    if not invitation_ids:
        return {}
    rows = session.execute(
        select(Message.invitation_id, Message.channel, func.min(Message.created_at))
        .where(
            among(Message.invitation_id, invitation_ids, session=session),
            Message.purpose == MessagePurpose.INVITATION,
            Message.send_state == SendState.FAILED,
        )
        .group_by(Message.invitation_id, Message.channel)
    )
    found: dict[int, FailedSince] = {}
    for invitation_id, channel, first in rows:
        if invitation_id is not None:
            found.setdefault(invitation_id, {})[channel] = first
    return found


def retry_delay(retry: int, retry_after: float | None, *, jitter: float) -> float:
    """Seconds until retry number `retry` (1 = the first): the back-off, or longer if the provider asked."""
    return max(backoff_delay(max(1, retry), jitter=jitter), retry_after or 0.0)


def gave_up_at(failed: FailedSince, expires_after: timedelta) -> datetime | None:
    """When retrying this survey must stop: the survey would have expired since its first failed try."""
    return min(failed.values()) + expires_after if failed else None


def exhausted_channels(
    usable: Sequence[Channel], failed: FailedSince, now: datetime, retry_for: timedelta
) -> frozenset[Channel]:
    """Channels whose retries ran out, while a later usable channel remains to fall back to.

    `usable` is the campaign's channel order, reduced to those this contact can still be reached by. The last
    one is never exhausted here: it is retried until the survey would have expired (`gave_up_at`).
    """
    return frozenset(
        channel for channel in usable[:-1] if channel in failed and now >= failed[channel] + retry_for
    )
