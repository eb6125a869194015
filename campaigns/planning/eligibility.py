"""Who may be surveyed, on which channel, and when next: pure decisions over facts loaded by the caller.

The same checks run when an invitation is planned and again right before it is sent, so an opt-out or a
survey from another campaign in between always wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.enums import Channel, SkipReason


@dataclass(frozen=True)
class Skip:
    reason: SkipReason
    detail: str
    # With FATIGUE: the first instant the contact may be surveyed again.
    until: datetime | None = None


@dataclass(frozen=True)
class ContactFacts:
    """What eligibility needs to know about one contact, loaded in bulk by the caller."""

    phone: str | None
    email: str | None
    opted_out_at: datetime | None = None
    # (channel, address) pairs whose owner said STOP / unsubscribed.
    opted_out_addresses: frozenset[tuple[Channel, str]] = frozenset()
    last_surveyed_at: datetime | None = None
    # The phone has had a survey text from us, which told it how to opt out (campaigns.messages.compose).
    sms_told: bool = False

    def address(self, channel: Channel) -> str | None:
        return self.phone if channel is Channel.SMS else self.email


def fatigue_days(campaign_days: int | None, global_days: int) -> int:
    """A campaign may set its own window (transactional ones usually shorter); otherwise the global rule."""
    return campaign_days if campaign_days is not None else global_days


def next_allowed(last_surveyed_at: datetime | None, days: int) -> datetime | None:
    """The first instant the fatigue rule lets this contact be surveyed again (None: any time)."""
    return None if last_surveyed_at is None else last_surveyed_at + timedelta(days=days)


def choose_channel(
    order: Sequence[Channel], facts: ContactFacts, exclude: frozenset[Channel] = frozenset()
) -> tuple[Channel, str] | None:
    """The first channel in the campaign's order that the contact has an address for and has not left."""
    for channel in order:
        address = facts.address(channel)
        if channel in exclude or not address or (channel, address) in facts.opted_out_addresses:
            continue
        return channel, address
    return None


def check(
    facts: ContactFacts,
    *,
    channels: Sequence[Channel],
    at: datetime,
    fatigue: int,
    exclude: frozenset[Channel] = frozenset(),
) -> Skip | None:
    """Why this contact may not be surveyed at `at`, or None when they may."""
    if facts.opted_out_at is not None:
        return Skip(SkipReason.OPTED_OUT, f"opted out of all surveys on {facts.opted_out_at:%Y-%m-%d}")
    if choose_channel(channels, facts, exclude) is None:
        return Skip(SkipReason.NO_CHANNEL, _no_channel_detail(channels, facts))
    allowed = next_allowed(facts.last_surveyed_at, fatigue)
    if allowed is not None and at < allowed:
        return Skip(
            SkipReason.FATIGUE,
            f"surveyed on {facts.last_surveyed_at:%Y-%m-%d}; at most one survey per {fatigue} days, "
            f"next possible {allowed:%Y-%m-%d}",
            until=allowed,
        )
    return None


def _no_channel_detail(channels: Sequence[Channel], facts: ContactFacts) -> str:
    parts = []
    for channel in channels:
        address = facts.address(channel)
        if not address:
            parts.append(f"no {'phone number' if channel is Channel.SMS else 'email address'}")
        elif (channel, address) in facts.opted_out_addresses:
            parts.append(f"unsubscribed from {channel}")
        else:
            parts.append(f"{channel} failed permanently")
    return "no usable channel: " + ", ".join(parts)
