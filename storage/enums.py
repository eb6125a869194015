"""Every closed vocabulary the database stores, one StrEnum each.

Stored as short strings (no native enum types, so migrations stay simple); the columns are typed with these
classes (`storage.tables._enum`), which refuse any other string at write time.
"""

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class ConsentStatus(StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class ConsentSource(StrEnum):
    """What a consent change in the ledger (``consent_changes``) came from."""

    KEYWORD = "keyword"  # a keyword reply: STOP, ARRÊT, 退订, START (ours or Twilio's Advanced Opt-Out)
    FREE_TEXT = "free_text"  # a revocation phrase in a reply: "please stop texting me"
    UNSUBSCRIBE_LINK = "unsubscribe_link"  # the page at /u/..., or a mail provider's RFC 8058 one-click POST
    TWILIO_21610 = "twilio_21610"  # Twilio refused a send: the person had replied STOP to that sender
    IMPORT = "import"
    ADMIN = "admin"


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
    FAILED = "failed"  # Slack refused this message for good (the reason is in last_error); `nps alerts retry`
    UNCERTAIN = (
        "uncertain"  # Slack may have it (a timeout, an unexpected answer): looked up before any re-post
    )
    REVIEW = (
        "review"  # posted or not could not be told (history unreadable): an operator decides, `nps alerts`
    )
    WITHDRAWN = (
        "withdrawn"  # the score was corrected: never shown, or its message says the answer was corrected
    )
    # One line of a burst summary (`bot.bursts`); posted on its own, in the summary's thread, once the case is
    # opened from the summary or changes.
    SUMMARISED = "summarised"


class MessagePurpose(StrEnum):
    """Why a row of `messages` exists; the outbox's claims carry it too (`Invitation.claimed_for`)."""

    INVITATION = "invitation"  # outbound: the survey itself
    REMINDER = "reminder"  # outbound: the one reminder to a non-responder
    CONVERSATION = "conversation"  # outbound: an answer in the SMS conversation (reason?, thanks, STOP, HELP)
    CLARIFICATION = "clarification"  # outbound: the one "please answer with a number"
    REPLY = "reply"  # inbound: an SMS the person sent
    STATUS_CALLBACK = "status"  # inbound: a delivery callback held until its message's provider id is known


class SendState(StrEnum):
    """Our side of an outbound message: what we know about handing it to the provider."""

    SENDING = "sending"  # written before the provider is called
    SENT = "sent"  # the provider accepted it
    REJECTED = "rejected"  # permanent provider error: this channel will not work for this address
    FAILED = "failed"  # temporary provider error: retried later
    UNKNOWN = "unknown"  # no answer: reconciled from the provider's log later
    NOT_SENT = "not_sent"  # found never to have gone out (reconciliation, or a claim too old to start)
    TWIML = "twiml"  # an SMS conversation answer, handed to Twilio in the webhook's TwiML response
    # An answer meant for TwiML whose webhook answer may have come too late for Twilio: the sweeper texts it
    # over the REST API, unless Twilio's retry of the reply takes it first (then "twiml").
    LATE_TWIML = "late_twiml"


class DeliveryStatus(StrEnum):
    """The provider's side of an outbound message, from its status callbacks (Twilio's MessageStatus)."""

    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"


class InboundState(StrEnum):
    """An inbound row's handling: stored first, then handled."""

    RECEIVED = "received"  # stored; not handled yet (a reply being answered, a callback held for its message)
    PROCESSING = (
        "processing"  # a reply claimed by one request or sweep (`claimed_by`, `claimed_at`) to handle it
    )
    PROCESSED = "processed"  # handled: the reply was answered, the held callback applied


class Category(StrEnum):
    """NPS category of a score: detractor 0-6, passive 7-8, promoter 9-10."""

    DETRACTOR = "detractor"
    PASSIVE = "passive"
    PROMOTER = "promoter"


class AlertKind(StrEnum):
    """What a queued Slack message is."""

    DETRACTOR = "detractor"
    KUDOS = "kudos"
    ASSIGNED = "assigned"  # a DM to the assignee
    REMINDER = "reminder"  # a DM to the assignee before the due time
    OVERDUE = "overdue"  # escalation to the alert channel
    UNACKNOWLEDGED = "unacknowledged"  # escalation: nobody acknowledged a detractor in time
    SUMMARY = "summary"  # one message for the detractors a channel got beyond its allowance (`bot.bursts`)


class SkipReason(StrEnum):
    """Why a campaign did not survey a contact (`skips.reason`); `contacts why` explains them."""

    OPTED_OUT = "opted_out"
    NO_CHANNEL = "no_channel"
    FATIGUE = "fatigue"
    NOT_SAMPLED = "not_sampled"
    PENDING = "pending_elsewhere"
    DUPLICATE_EVENT = "dedupe"
    AUDIENCE = "audience"
    UNDELIVERABLE = "undeliverable"


class ContactMethod(StrEnum):
    """How a manager reached the customer when resolving a follow-up (the Resolve modal's choices)."""

    PHONE_CALL = "phone call"
    EMAIL = "email"
    SMS = "SMS"
    MEETING = "meeting"
    OTHER = "other"


class AuditEntity(StrEnum):
    """The kind of record an audit entry is about."""

    CONTACT = "contact"
    EVENT = "event"
    CAMPAIGN = "campaign"
    FOLLOW_UP = "follow_up"
    API_KEY = "api_key"
    WORKSPACE = "workspace"  # a Slack workspace or Enterprise Grid org (a request from one not installed)
    THEME = "theme"  # a saved theme (`nps themes add`, `/nps themes add`)


class AuditAction(StrEnum):
    """What was done. A campaign's pause, resume and run read the same from the CLI and from Slack."""

    CONTACTS_IMPORTED = "contacts.import"
    CONTACT_CREATED = "contact.created"
    CONTACT_UPDATED = "contact.updated"
    EVENT_RECEIVED = "event.received"
    API_KEY_CREATED = "apikey.created"
    API_KEY_REVOKED = "apikey.revoked"
    CAMPAIGN_CREATED = "campaign.created"
    CAMPAIGN_UPDATED = "campaign.updated"
    CAMPAIGN_PAUSED = "campaign.pause"
    CAMPAIGN_RESUMED = "campaign.resume"
    CAMPAIGN_RUN = "campaign.run"
    CAMPAIGN_CONTROL_REFUSED = "campaign.control.refused"  # a non-admin asked Slack to control a campaign
    FOLLOW_UP_ACKNOWLEDGED = "follow_up.acknowledged"
    FOLLOW_UP_ASSIGNED = "follow_up.assigned"
    FOLLOW_UP_RESOLVED = "follow_up.resolved"
    FOLLOW_UP_REOPENED = "follow_up.reopened"
    # Refused in Slack (bot.permissions): the details say what was asked and why it was refused.
    FOLLOW_UP_REFUSED = "follow_up.refused"  # a button or the Resolve modal, by someone who may not act on it
    CONTACT_LOOKUP_REFUSED = (
        "contact.lookup.refused"  # `/nps contact` by someone who may not see personal data
    )
    SLACK_REQUEST_REFUSED = "slack.request.refused"  # any request from another workspace or enterprise
    THEME_SAVED = "theme.saved"
    THEME_REMOVED = "theme.removed"
    THEME_CHANGE_REFUSED = "theme.change.refused"  # a non-admin asked Slack to add or remove a saved theme


class NoticeState(StrEnum):
    """A notice to the admin channel (`admin_notices`): posted at most once."""

    PENDING = "pending"
    POSTING = "posting"  # claimed, Slack being called; left here by a poster that died: never posted again
    POSTED = "posted"
    FAILED = "failed"  # Slack's answer was lost (it may be there), or Slack refused it for a day
