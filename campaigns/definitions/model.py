"""Campaign definitions: the validated values a campaign file describes, and the rules between their fields.

How the fields combine (the planner relies on these rules):

- ``relationship``: every contact in the audience is surveyed every ``interval_days`` (default 90). With an
  ``event`` it becomes the combination "first survey ``delay`` after the event, then every ``interval_days``"
  (e.g. after onboarding, then every three months); without one, the first survey is due ``first_after_days``
  after the contact was created.
- ``transactional``: ``event`` is required; the survey is due ``delay`` after the event, at most one per
  contact per ``dedupe_days`` (0 turns deduplication off; the fatigue rule still applies). Giving
  ``interval_days`` makes it the same combination as a relationship campaign with an event, so both spellings
  work. After parsing, ``interval_days is None`` means "one survey per event" and ``event is None`` means
  "not triggered by events".
- ``first_after_days`` (default 0) is a floor for every kind: no survey before the contact is that many days
  old. ``delay`` and ``dedupe_days`` only apply with an ``event``, so giving them without one is an error.

Values are plain and frozen: the file is read by :mod:`campaigns.definitions.campaign_file`, stored as JSON by
:mod:`campaigns.definitions.json_codec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import cached_property

from campaigns.messages.catalogue import MessageTexts
from campaigns.messages.locales import FALLBACK_LOCALE
from storage.enums import CampaignKind, Channel

__all__ = ["Audience", "CampaignDefinition", "SendWindow", "as_utc"]

DEFAULT_INTERVAL_DAYS = 90
DEFAULT_DEDUPE_DAYS = 30
DEFAULT_REMIND_AFTER = timedelta(days=3)
DEFAULT_EXPIRES_AFTER = timedelta(days=14)
DEFAULT_CHANNELS = (Channel.SMS, Channel.EMAIL)
# Monday to Thursday, 09:00-12:00 in the recipient's time zone: when NPS surveys are answered most.
DEFAULT_DAYS = frozenset({0, 1, 2, 3})
DEFAULT_START = time(9)
DEFAULT_END = time(12)


@dataclass(frozen=True)
class SendWindow:
    """Weekdays (0 = Monday ... 6 = Sunday) and local wall-clock hours [start, end) a recipient may get a message."""

    days: frozenset[int] = DEFAULT_DAYS
    start: time = DEFAULT_START
    end: time = DEFAULT_END

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"send window days must be a non-empty set of 0..6, not {sorted(self.days)}")
        if not self.start < self.end:
            raise ValueError(f"a send window must end after it starts ({self.start}-{self.end})")


@dataclass(frozen=True)
class Audience:
    """Who a campaign surveys: property filters (all must hold; a tuple means any of) and a creation range.

    ``created_after`` is inclusive and ``created_before`` exclusive, so adjacent ranges never overlap.
    """

    properties: dict[str, tuple[str, ...]] = field(default_factory=dict)
    created_before: datetime | None = None
    created_after: datetime | None = None

    def __post_init__(self) -> None:
        # Naive bounds are UTC, like naive creation times; comparing naive with aware would raise.
        for name in ("created_before", "created_after"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                object.__setattr__(self, name, moment.replace(tzinfo=UTC))

    @cached_property
    def _wanted(self) -> dict[str, frozenset[str]]:
        # Folded once per definition: matches() runs for every contact of every planning pass.
        return {key: frozenset(_fold(value) for value in values) for key, values in self.properties.items()}

    def matches(self, properties: Mapping[str, object], created_at: datetime) -> bool:
        """Whether a contact belongs to the audience.

        Values are compared as stripped text without case ("EU" matches " eu "); a property the contact lacks
        (or has empty) never matches. The property name is looked up exactly, then without case, because CSV
        headers are often capitalised ("Plan"). A naive ``created_at`` is taken as UTC.
        """
        if not self._created_in_range(as_utc(created_at)):
            return False
        return all(_is_one_of(_lookup(properties, key), wanted) for key, wanted in self._wanted.items())

    def _created_in_range(self, created_at: datetime) -> bool:
        if self.created_after is not None and created_at < self.created_after:
            return False
        return self.created_before is None or created_at < self.created_before


def _lookup(properties: Mapping[str, object], key: str) -> object:
    if key in properties:
        return properties[key]
    folded = key.casefold()
    return next((value for name, value in properties.items() if name.casefold() == folded), None)


def _is_one_of(value: object, wanted: frozenset[str]) -> bool:
    folded = _fold(value)
    return bool(folded) and folded in wanted


def _fold(value: object) -> str:
    """Comparable text of a property value; "" for a missing one."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # the JSON spelling, as contacts store booleans
    return str(value).strip().casefold()


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class CampaignDefinition:
    """One validated campaign; see the module docstring for how kind, event and interval_days combine.

    Defaults are those of the campaign file except ``interval_days``, which the parser sets to 90 for a
    relationship campaign (a relationship campaign always has one; a transactional campaign always an event).
    ``timezone`` None means the service default (NPS_TIMEZONE) for contacts without a zone of their own;
    ``remind_after`` None means no reminder; ``min_days_between_surveys`` None means the global fatigue rule.
    """

    name: str
    kind: CampaignKind
    event: str | None = None
    delay: timedelta = timedelta(0)
    interval_days: int | None = None
    first_after_days: int = 0
    dedupe_days: int = DEFAULT_DEDUPE_DAYS
    min_days_between_surveys: int | None = None
    audience: Audience = field(default_factory=Audience)
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS
    send_window: SendWindow = field(default_factory=SendWindow)
    timezone: str | None = None
    remind_after: timedelta | None = DEFAULT_REMIND_AFTER
    expires_after: timedelta = DEFAULT_EXPIRES_AFTER
    sample_rate: float = 1.0
    daily_target: int | None = None
    locale: str = FALLBACK_LOCALE
    brand: str | None = None
    messages: dict[str, MessageTexts] = field(default_factory=dict)
    # Slack channel id for this campaign's alerts (None: SLACK_ALERT_CHANNEL / SLACK_KUDOS_CHANNEL).
    slack_channel: str | None = None
    # Categories whose answers open a follow-up with a deadline; detractors always do.
    follow_up: tuple[str, ...] = ("detractor",)
    # A review or referral page promoters are offered in their closing text (None: no link).
    promoter_link: str | None = None
    # eNPS: no output links an answer to a person and no group under 5 answers is shown
    # (campaigns.scores.anonymity); such a campaign opens no follow-ups and posts no alerts.
    anonymous: bool = False
    # Days after a detractor's follow-up is resolved to survey them again (None: no re-survey).
    recovery_after_days: int | None = None

    def __post_init__(self) -> None:
        # The invariants the planner depends on; the parser never breaks them, hand-built definitions might.
        if self.kind is CampaignKind.RELATIONSHIP and self.interval_days is None:
            raise ValueError("a relationship campaign needs interval_days")
        if self.kind is CampaignKind.TRANSACTIONAL and self.event is None:
            raise ValueError("a transactional campaign needs an event")
        if not self.channels:
            raise ValueError("a campaign needs at least one channel")
