"""The database schema: SQLAlchemy 2 typed models. Changes go through Alembic (`storage/migrations`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import Enum, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.enums import (
    AlertKind,
    AlertState,
    AuditAction,
    AuditEntity,
    CampaignKind,
    CampaignStatus,
    Category,
    Channel,
    ConsentSource,
    ConsentStatus,
    ContactMethod,
    DeliveryStatus,
    Direction,
    FollowUpStatus,
    InboundState,
    InvitationState,
    MessagePurpose,
    NoticeState,
    SendState,
    SkipReason,
)
from storage.types import JsonDict, UTCDateTime, utcnow

# Stable constraint names, so that migrations can refer to them on every engine.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _enum(cls: type[StrEnum], length: int = 24) -> Enum:
    """A column holding one of `cls`'s values; writing any other string raises LookupError."""
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {datetime: UTCDateTime(), dict[str, Any]: JsonDict}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Contact(Timestamps, Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Set when the person asked never to be surveyed again on any channel.
    opted_out_at: Mapped[datetime | None]
    # History brought from elsewhere (CSV import, API): when they became a customer, which `first_after_days`
    # counts from instead of `created_at`, and when another tool last surveyed them, which the fatigue rule
    # counts as well as our own invitations.
    customer_since: Mapped[datetime | None]
    last_surveyed_at: Mapped[datetime | None]
    # A test address of `nps campaigns test`: never in an audience, its surveys never in the statistics.
    test: Mapped[bool] = mapped_column(default=False, server_default=false())


class Consent(Base):
    """Consent per channel and address: an opt-out follows the phone number or email, not the contact row."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    address: Mapped[str] = mapped_column(String(320))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    status: Mapped[ConsentStatus] = mapped_column(_enum(ConsentStatus))
    source: Mapped[str] = mapped_column(String(40))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentChange(Base):
    """The consent ledger: every opt-out and opt-in, never updated or deleted while the contact is kept.

    ``consents`` holds the state now; this is how it came to be, for `nps contacts why` and a person's export.
    """

    __tablename__ = "consent_changes"
    __table_args__ = (Index("ix_consent_changes_channel_address", "channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    address: Mapped[str] = mapped_column(String(320))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    status: Mapped[ConsentStatus] = mapped_column(_enum(ConsentStatus))
    source: Mapped[ConsentSource] = mapped_column(_enum(ConsentSource))
    # The keyword or phrase read ("STOP", "STOP TEXTING"), "one-click", the provider's error code, ...
    detail: Mapped[str] = mapped_column(String(200), default="")
    # The message that caused it: the inbound reply, or the outbound send the provider refused.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Campaign(Timestamps, Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[CampaignKind] = mapped_column(_enum(CampaignKind))
    status: Mapped[CampaignStatus] = mapped_column(_enum(CampaignStatus), default=CampaignStatus.ACTIVE)
    event: Mapped[str | None] = mapped_column(String(100), index=True)
    # The validated definition as applied from the campaign file.
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # When the relationship planner last scanned the audience; it rescans at most every few minutes.
    last_planned_at: Mapped[datetime | None]


# An invitation in one of these states is still waiting to go out; a contact has at most one such invitation.
PENDING_INVITATION_STATES = (InvitationState.PLANNED, InvitationState.CLAIMED)
IS_PENDING = text("state IN (" + ", ".join(f"'{state.value}'" for state in PENDING_INVITATION_STATES) + ")")
# The reminders ReminderFlow.due may claim (campaigns.dispatch.outbox), as far as a condition without bound values
# says: a partial index over a bound value (the states) is used by neither SQLite nor a generic PostgreSQL plan.
AWAITING_REMINDER = text(
    "reminder_due_at IS NOT NULL AND reminded_at IS NULL AND responded_at IS NULL AND owner IS NULL"
)


class Invitation(Timestamps, Base):
    """The outbox: one row per survey to send, written before anything is sent."""

    __tablename__ = "invitations"
    __table_args__ = (
        # The survey claim's rows (one state) in its order (due time, then id): a batch is the index's first rows,
        # however many are due at once. A million surveys due in the same minute are not sorted at each batch.
        Index("ix_invitations_state_due_at_id", "state", "due_at", "id"),
        Index("ix_invitations_contact_id_created_at", "contact_id", "created_at"),
        # A campaign's history per contact (cycles so far, last due time): the planner's "next due".
        Index("ix_invitations_campaign_id_contact_id_due_at", "campaign_id", "contact_id", "due_at"),
        Index("ix_invitations_contact_id_sent_at", "contact_id", "sent_at"),
        Index("ix_invitations_state_reminder_due_at", "state", "reminder_due_at"),
        Index("ix_invitations_state_claimed_at", "state", "claimed_at"),
        # The reminder claim's rows in its order (due time, then id). Its two states are checked on the rows read:
        # an index over (state, time) returns each state's rows apart, so every due reminder was read and sorted.
        Index(
            "ix_invitations_claim_reminder_due",
            "reminder_due_at",
            "id",
            sqlite_where=AWAITING_REMINDER,
            postgresql_where=AWAITING_REMINDER,
        ),
        # At most one pending survey per contact, whoever plans it (the planner, an event, two processes at once).
        Index(
            "ux_invitations_one_pending_per_contact",
            "contact_id",
            unique=True,
            sqlite_where=IS_PENDING,
            postgresql_where=IS_PENDING,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    # Read by campaign from `ix_invitations_campaign_id_contact_id_due_at` (no index of its own: see revision 0022).
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    channel: Mapped[Channel | None] = mapped_column(_enum(Channel))
    state: Mapped[InvitationState] = mapped_column(_enum(InvitationState), default=InvitationState.PLANNED)
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    # The SMS link's shorter token (`/s/<short_token>`), given when the survey is first composed for SMS.
    short_token: Mapped[str | None] = mapped_column(String(16), unique=True, index=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    # What the current claim is for (the survey or its reminder); null when no worker holds the row.
    claimed_for: Mapped[MessagePurpose | None] = mapped_column(_enum(MessagePurpose))
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    reminder_due_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # One invitation per campaign, contact and cycle ("7:42:r3" or "7:42:e19"): planning twice cannot duplicate.
    dedupe_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    # A recovery re-survey (the campaign's `recovery`): the resolved follow-up it asks about; one per follow-up.
    # `use_alter`: invitations -> follow-ups -> responses -> invitations is a cycle for table ordering.
    recovery_of_follow_up_id: Mapped[int | None] = mapped_column(
        ForeignKey("follow_ups.id", ondelete="SET NULL", use_alter=True), unique=True
    )


class Event(Base):
    """A transactional trigger received through the API (`order_delivered`, `ticket_closed`, ...)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_contact_id_name_occurred_at", "contact_id", "name", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A replay with the same key returns the stored outcome instead of planning again.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    outcome: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Skip(Base):
    """Why a campaign did not survey a contact; one row per campaign, contact and reason, counted."""

    __tablename__ = "skips"
    __table_args__ = (UniqueConstraint("campaign_id", "contact_id", "reason"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    reason: Mapped[SkipReason] = mapped_column(_enum(SkipReason, length=32))
    detail: Mapped[str] = mapped_column(Text)
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)


class Lease(Base):
    """A named lease with an expiry: keeps the scheduler to one process per deployment."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


class ChannelPause(Base):
    """A channel no worker sends on until `until`: the provider refused our setup, or is down for everyone.

    Shared by every worker; read by health checks. After `until` one worker sends a probe; a send that works
    deletes the row.
    """

    __tablename__ = "channel_pauses"

    channel: Mapped[Channel] = mapped_column(_enum(Channel), primary_key=True)
    code: Mapped[str | None] = mapped_column(String(32))  # the provider's error code, when it gave one
    reason: Mapped[str] = mapped_column(Text)  # what happened and what to fix
    since: Mapped[datetime]
    until: Mapped[datetime]
    # Failed probes since the pause began: each one doubles the next pause, up to a cap.
    probes: Mapped[int] = mapped_column(Integer, default=0)


# Answers the sweeper is to text over REST (their TwiML came too late): a handful of rows among all messages.
IS_LATE_TWIML = text(f"send_state = '{SendState.LATE_TWIML.value}'")


class NoticeSubject(Base):
    """What the admin channel was last told about one subject ("channel:sms", "slack:C0..."): held or not.

    A notice is queued only when this flips (a compare-and-set), so a subject that stays held says nothing new.
    """

    __tablename__ = "notice_subjects"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    held: Mapped[bool]
    changed_at: Mapped[datetime]


class AdminNotice(Base):
    """A plain message to SLACK_ADMIN_CHANNEL about the service itself, queued with the change it announces."""

    __tablename__ = "admin_notices"
    __table_args__ = (Index("ix_admin_notices_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[NoticeState] = mapped_column(_enum(NoticeState), default=NoticeState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    posted_at: Mapped[datetime | None]
    ts: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)


class Message(Timestamps, Base):
    """Every message in or out, with the provider's id and delivery status; inbound ones keep the raw payload.

    Three vocabularies, one column each: `send_state` is ours (outbound: did the provider take it?),
    `delivery_status` the provider's (outbound: its status callbacks), `inbound_state` our handling of what
    came in. The columns of the other direction stay null.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id"),
        Index("ix_messages_invitation_id", "invitation_id"),
        # A reply's survey: the newest text to its number (campaigns.replies.responses; migration 0021).
        Index("ix_messages_address_id", "address", "id"),
        Index("ix_messages_inbound_state_created_at", "inbound_state", "created_at"),
        Index("ix_messages_late_twiml", "id", sqlite_where=IS_LATE_TWIML, postgresql_where=IS_LATE_TWIML),
        # The totals GET /metrics counts at every scrape (service.metrics.database), read from the index alone.
        Index(
            "ix_messages_outcomes",
            "direction",
            "channel",
            "purpose",
            "send_state",
            "delivery_status",
            "error_code",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    purpose: Mapped[MessagePurpose] = mapped_column(_enum(MessagePurpose))
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    # The other party: the customer's phone number or email address.
    address: Mapped[str] = mapped_column(String(320))
    body: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(255))
    send_state: Mapped[SendState | None] = mapped_column(_enum(SendState))
    delivery_status: Mapped[DeliveryStatus | None] = mapped_column(_enum(DeliveryStatus))
    inbound_state: Mapped[InboundState | None] = mapped_column(_enum(InboundState))
    error_code: Mapped[str | None] = mapped_column(String(32))
    raw: Mapped[dict[str, Any] | None]
    # Inbound replies: who handles it (a claim, taken over when stale). Outbound answers: the reply answered.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )


class Response(Timestamps, Base):
    __tablename__ = "responses"
    __table_args__ = (
        Index("ix_responses_answered_at", "answered_at"),
        Index("ix_responses_campaign_id_answered_at", "campaign_id", "answered_at"),
        # With `test` last, the score queries still read only this index (campaigns.scores.filters).
        Index("ix_responses_category_answered_at", "category", "answered_at", "test"),
        Index("ix_responses_channel_category", "channel", "category"),  # GET /metrics
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="SET NULL"), unique=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    score: Mapped[int]
    category: Mapped[Category] = mapped_column(_enum(Category, length=16))
    comment: Mapped[str | None] = mapped_column(Text)
    late: Mapped[bool] = mapped_column(default=False)
    # The answer of a test contact (`nps campaigns test`): kept, never counted.
    test: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The contact's properties when they answered, so that later edits do not rewrite history.
    contact_snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)
    commented_at: Mapped[datetime | None]
    # An imported response: "delighted:<its response id>" keeps a re-import from adding it twice, and what the
    # old tool kept beside the answer (tags, notes, permalink) stays with it.
    source_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    imported: Mapped[dict[str, Any] | None]


class FollowUp(Timestamps, Base):
    __tablename__ = "follow_ups"
    __table_args__ = (
        Index("ix_follow_ups_status_due_at", "status", "due_at"),
        Index("ix_follow_ups_assignee_status", "assignee", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), unique=True)
    status: Mapped[FollowUpStatus] = mapped_column(_enum(FollowUpStatus), default=FollowUpStatus.OPEN)
    due_at: Mapped[datetime]
    assignee: Mapped[str | None] = mapped_column(String(32))
    assigned_by: Mapped[str | None] = mapped_column(String(32))
    assigned_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    # When the "nobody acknowledged this detractor" escalation went out (escalated_at is for overdue).
    unacknowledged_escalated_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[datetime | None]
    outcome_note: Mapped[str | None] = mapped_column(Text)
    contact_method: Mapped[ContactMethod | None] = mapped_column(_enum(ContactMethod, length=32))


class SlackAlert(Timestamps, Base):
    """A Slack message we owe or have posted; channel and ts are kept so that it can be edited in place."""

    __tablename__ = "slack_alerts"
    __table_args__ = (Index("ix_slack_alerts_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AlertKind] = mapped_column(_enum(AlertKind))
    response_id: Mapped[int | None] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), index=True
    )
    follow_up_id: Mapped[int | None] = mapped_column(ForeignKey("follow_ups.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[AlertState] = mapped_column(_enum(AlertState), default=AlertState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Bumped whenever what the alert shows changes; a post that rendered an older revision is done again.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    posted_at: Mapped[datetime | None]
    # When a poster last claimed it to post (not to edit): where to start looking for a message Slack may have.
    claimed_at: Mapped[datetime | None]
    # The score was corrected away from this alert's kind; a message already in Slack is edited to say so.
    withdrawn_at: Mapped[datetime | None]
    # Set while the alert waits (pending) on a channel Slack refuses (bot removed, archived, gone): that channel.
    held_channel: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiKey(Base):
    """An HTTP API key; only its SHA-256 is stored, the key itself is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity_type_entity_id", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Who did it: "cli", "api:<key prefix>", "slack:<user id>", "system".
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[AuditAction] = mapped_column(_enum(AuditAction, length=64))
    entity_type: Mapped[AuditEntity] = mapped_column(_enum(AuditEntity, length=32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SavedTheme(Base):
    """A theme to track over time (`nps themes add`): a keyword or phrase, within the responses a `/nps` query
    selects (its text, read again at each report, so that "campaign:pulse plan=pro" keeps its meaning)."""

    __tablename__ = "saved_themes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    phrase: Mapped[str] = mapped_column(String(200))
    query: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
