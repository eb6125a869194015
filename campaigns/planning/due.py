"""When a contact's next survey in a campaign is due: pure date arithmetic, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta

from campaigns.planning.sampling import phase_days


def relationship_due(
    *,
    campaign_id: int,
    contact_id: int,
    interval_days: int,
    first_after_days: int,
    campaign_started_at: datetime,
    contact_created_at: datetime,
    last_due_at: datetime | None,
    anchor_at: datetime | None = None,
) -> datetime:
    """The next due time of a recurring survey.

    After a first survey the rhythm is kept from the previous due time. A first survey is spread over the
    interval by a stable per-contact phase, so a campaign over an existing base starts as daily batches rather
    than one blast, and it never comes earlier than `first_after_days` after the contact was created. With an
    `anchor_at` (the event of a "after the event, then every N days" campaign) the first survey is due then.
    """
    if last_due_at is not None:
        return last_due_at + timedelta(days=interval_days)
    if anchor_at is not None:
        return anchor_at
    spread = campaign_started_at + timedelta(days=phase_days(interval_days, campaign_id, contact_id))
    return max(spread, contact_created_at + timedelta(days=first_after_days))
