"""Closed vocabularies stored as short strings (no native enum types, so migrations stay simple)."""

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class ConsentStatus(StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class CampaignKind(StrEnum):
    RELATIONSHIP = "relationship"
    TRANSACTIONAL = "transactional"


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class InvitationState(StrEnum):
    """The outbox state machine: planned -> claimed -> sent -> delivered | failed | undeliverable
    -> responded | expired; `review` holds a claim that never finished and could not be reconciled."""

    PLANNED = "planned"
    CLAIMED = "claimed"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERABLE = "undeliverable"
    RESPONDED = "responded"
    EXPIRED = "expired"
    REVIEW = "review"
    CANCELLED = "cancelled"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class FollowUpStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertState(StrEnum):
    PENDING = "pending"
    POSTING = "posting"  # claimed by a poster that is talking to Slack right now
    POSTED = "posted"
    FAILED = "failed"
