"""The outbox's rows: staging a message, and what each step of a send does to its invitation, per purpose.

A send goes through the same steps whatever it is for (claim, stage, send, record, reconcile; see
campaigns.dispatch.dispatcher and campaigns.dispatch.reconcile). What differs between the survey itself and its
reminder is only which invitations are due and what each outcome does to the invitation: those differences are
the two flows below, picked by the message purpose (`FLOWS[purpose]`), so a fix to a step serves both.

- invitation: due when `planned` and `due_at` has come. Claiming moves it to `claimed`; sent, it becomes `sent`
  with its expiry and reminder times; put back, it is `planned` again (send window, temporary error, the next
  channel after a permanent one); given up, it ends `failed`, `cancelled` or `undeliverable`; when the provider
  keeps no log to settle an unfinished send, it is held for `review`.
- reminder: due when `sent` or `delivered`, unanswered, once `reminder_due_at` has come and while no reminder
  was claimed (`reminded_at` is null). Claiming sets `reminded_at` in the same statement, which keeps it to one
  reminder per invitation even with several workers; the invitation's state is left alone, so a reply during the
  send still counts. Put back (nothing went out) clears `reminded_at` again; given up, or unverifiable, the
  reminder is dropped (`reminder_due_at` cleared): at most once matters more than at least once.

Every claim records its owner, time and purpose (`owner`, `claimed_at`, `claimed_for`); a step acts on a row only
while its own claim still holds, and every transition releases the claim. "Still holds" is decided under the
row's lock, never from an earlier read (SQLite has no `FOR UPDATE`; a plain read there locks nothing):
- the reconciler takes a stale claim with one compare-and-set on the claim it saw (`take_claim`: id, purpose,
  owner and claim time; 0 rows = settled elsewhere meanwhile, do nothing);
- the dispatcher's record step locks its batch's rows first (`lock_invitations`) and only then reads them, so a
  reply or a reconciliation that committed before is seen, and one that comes later waits for the commit.
Both take the lock with an UPDATE, the one statement that locks on both engines: the row lock on PostgreSQL,
the database's write lock on SQLite (the transaction's first write), held until commit. Those transactions are
short and never contain a provider call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, bindparam, func, insert, literal, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, object_session

from campaigns.channels.base import Outgoing
from campaigns.definitions.json_codec import definition_from_json
from campaigns.definitions.model import CampaignDefinition
from campaigns.dispatch.delivery import apply_held
from campaigns.planning.recovery import re_survey_sent
from campaigns.planning.windows import next_send_time, zone_for
from storage.enums import Channel, Direction, InvitationState, MessagePurpose, SendState
from storage.lists import among, array_of
from storage.tables import Campaign, Contact, Invitation, Message

AWAITING_ANSWER = (InvitationState.SENT, InvitationState.DELIVERED)


def stage_messages(
    staged: Sequence[tuple[Invitation, Outgoing]], *, purpose: MessagePurpose, now: datetime, session: Session
) -> dict[int, int]:
    """The batch's outbound message rows, written before the provider is called so that a crash leaves a trace:
    their ids by invitation id (a batch stages at most one message per invitation).

    One statement for the batch. On PostgreSQL the rows travel as one array per column, `INSERT ... SELECT FROM
    unnest(...)`: a dozen parameters and the same text for every batch, which psycopg keeps parsed and
    PostgreSQL prepares. A VALUES list is some 500 bytes a row, which psycopg parses anew for every batch
    (storage.lists says why); SQLite's driver keeps it parsed.
    """
    if not staged:
        return {}
    per_row: dict[str, list[Any]] = {
        "invitation_id": [invitation.id for invitation, _ in staged],
        "contact_id": [invitation.contact_id for invitation, _ in staged],
        "channel": [outgoing.channel for _, outgoing in staged],
        "address": [outgoing.to for _, outgoing in staged],
        "body": [outgoing.body for _, outgoing in staged],
    }
    same: dict[str, Any] = {
        "direction": Direction.OUTBOUND,
        "purpose": purpose,
        "send_state": SendState.SENDING,
        "created_at": now,
        "updated_at": now,
    }
    columns = Message.__table__.c
    if session.get_bind().dialect.name == "postgresql":
        arrays = [
            bindparam(name, values, type_=array_of(columns[name].type)) for name, values in per_row.items()
        ]
        rows = func.unnest(*arrays).table_valued(*per_row).render_derived()
        constants = [literal(value, columns[name].type) for name, value in same.items()]
        statement = insert(Message).from_select([*per_row, *same], select(*rows.c, *constants))
        written = session.execute(statement.returning(Message.invitation_id, Message.id))
    else:
        values = [
            {**same, **{name: column[i] for name, column in per_row.items()}} for i in range(len(staged))
        ]
        written = session.execute(insert(Message).returning(Message.invitation_id, Message.id), values)
    return {row.invitation_id: row.id for row in written}


def lock_invitations(invitation_ids: Sequence[int], *, session: Session) -> None:
    """Lock these invitations until the transaction ends; read them only after this.

    A no-op UPDATE: on PostgreSQL it takes the rows' locks (waiting for a writer that holds one, then reading
    its committed row), on SQLite it starts the write transaction (waiting for the write lock). Either way no
    other writer can change these rows between our read and our write.
    """
    if invitation_ids:
        session.execute(
            update(Invitation)
            .where(among(Invitation.id, invitation_ids, session=session))
            .values(updated_at=Invitation.updated_at)
            .execution_options(synchronize_session=False)
        )


def take_claim(
    flow: Flow,
    invitation_id: int,
    *,
    owner: str | None,
    claimed_at: datetime,
    now: datetime,
    session: Session,
) -> Invitation | None:
    """The claim as it was seen, now ours to settle; None when it changed meanwhile (settled elsewhere).

    One compare-and-set on what identifies a claim: its purpose, owner and claim time (a new claim of the same
    row has a later time, whoever makes it). The changed row stays locked until the transaction ends, so the
    transition that follows acts on exactly the row that was compared.
    """
    owned = Invitation.owner.is_(None) if owner is None else Invitation.owner == owner
    taken = session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            flow.claimed(),
            Invitation.claimed_for == flow.purpose,
            owned,
            Invitation.claimed_at == claimed_at,
        )
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(Invitation, invitation_id, populate_existing=True)


def set_send_state(
    message_id: int, expected: SendState, state: SendState, now: datetime, *, session: Session
) -> bool:
    """Compare-and-set on a message's send state; False when it was no longer `expected`."""
    changed = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.send_state == expected)
        .values(send_state=state, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return changed.rowcount == 1  # type: ignore[attr-defined]


def rejected_channels(invitation_ids: Sequence[int], *, session: Session) -> dict[int, frozenset[Channel]]:
    """Channels that failed permanently for each invitation: the next attempt skips them."""
    rows = session.execute(
        select(Message.invitation_id, Message.channel).where(
            among(Message.invitation_id, invitation_ids, session=session),
            Message.send_state == SendState.REJECTED,
        )
    )
    found: dict[int, set[Channel]] = {}
    for invitation_id, channel in rows:
        if invitation_id is not None:
            found.setdefault(invitation_id, set()).add(channel)
    return {key: frozenset(value) for key, value in found.items()}


def release(invitation: Invitation, now: datetime) -> None:
    """No worker holds the row any more."""
    invitation.owner = None
    invitation.claimed_for = None
    invitation.updated_at = now


def cancel(
    invitation: Invitation, reason: str, now: datetime, state: InvitationState = InvitationState.CANCELLED
) -> None:
    invitation.state = state
    invitation.last_error = reason
    release(invitation, now)


def requeue(invitation: Invitation, due_at: datetime, now: datetime) -> None:
    invitation.state = InvitationState.PLANNED
    invitation.due_at = due_at
    release(invitation, now)


def mark_sent(
    invitation: Invitation,
    message: Message,
    provider_id: str | None,
    definition: CampaignDefinition,
    zone_name: str,
    now: datetime,
) -> None:
    _mark_message_sent(message, provider_id, now)
    invitation.state = InvitationState.SENT
    invitation.sent_at = now
    invitation.last_error = None
    invitation.expires_at = now + definition.expires_after
    invitation.reminder_due_at = reminder_due(definition, zone_name, now)
    release(invitation, now)


def _mark_message_sent(message: Message, provider_id: str | None, now: datetime) -> None:
    message.send_state = SendState.SENT
    message.provider_id = provider_id
    message.updated_at = now


def reminder_due(definition: CampaignDefinition, zone_name: str, sent_at: datetime) -> datetime | None:
    if definition.remind_after is None or definition.remind_after >= definition.expires_after:
        return None
    zone = zone_for(zone_name, None, "UTC")
    return next_send_time(definition.send_window, zone, sent_at + definition.remind_after)


class InvitationFlow:
    """The survey itself: planned -> claimed -> sent (or back to planned, or a final state)."""

    purpose: ClassVar[MessagePurpose] = MessagePurpose.INVITATION
    order: ClassVar[InstrumentedAttribute[datetime]] = Invitation.due_at

    @staticmethod
    def due(now: datetime) -> list[ColumnElement[bool]]:
        return [Invitation.state == InvitationState.PLANNED, Invitation.due_at <= now]

    @staticmethod
    def claim_values(now: datetime) -> dict[str, Any]:
        return {"state": InvitationState.CLAIMED, "attempts": Invitation.attempts + 1}

    @staticmethod
    def claimed() -> ColumnElement[bool]:
        return Invitation.state == InvitationState.CLAIMED

    @staticmethod
    def holds(invitation: Invitation, worker_id: str) -> bool:
        return invitation.state is InvitationState.CLAIMED and invitation.owner == worker_id

    @staticmethod
    def sent(
        invitation: Invitation,
        message: Message,
        provider_id: str | None,
        definition: CampaignDefinition,
        zone_name: str,
        now: datetime,
    ) -> None:
        answered = invitation.state is InvitationState.RESPONDED  # a reply beat the provider's answer
        mark_sent(invitation, message, provider_id, definition, zone_name, now)
        if answered:
            invitation.state = InvitationState.RESPONDED
        session = object_session(invitation)
        if invitation.recovery_of_follow_up_id is not None and session is not None:
            re_survey_sent(session, invitation.recovery_of_follow_up_id, now)

    @staticmethod
    def put_back(invitation: Invitation, due_at: datetime, now: datetime) -> None:
        requeue(invitation, due_at, now)

    @staticmethod
    def after_rejection(invitation: Invitation, now: datetime) -> None:
        # At once: the next attempt tries the campaign's next channel, or ends as undeliverable.
        requeue(invitation, now, now)

    @staticmethod
    def give_up(invitation: Invitation, reason: str, now: datetime) -> None:
        cancel(invitation, reason, now, InvitationState.FAILED)

    @staticmethod
    def attempts(invitation: Invitation, *, session: Session) -> int:
        return invitation.attempts

    @staticmethod
    def unverifiable(invitation: Invitation, reason: str, now: datetime) -> None:
        invitation.state = InvitationState.REVIEW
        invitation.last_error = reason + ", so it is held for review instead of risking a second message"
        release(invitation, now)


class ReminderFlow:
    """The one reminder: claimed by setting `reminded_at`; the invitation's state is never changed."""

    purpose: ClassVar[MessagePurpose] = MessagePurpose.REMINDER
    order: ClassVar[InstrumentedAttribute[datetime | None]] = Invitation.reminder_due_at

    @staticmethod
    def due(now: datetime) -> list[ColumnElement[bool]]:
        return [
            Invitation.state.in_(AWAITING_ANSWER),
            Invitation.reminder_due_at <= now,
            Invitation.reminded_at.is_(None),
            Invitation.responded_at.is_(None),
            Invitation.owner.is_(None),
        ]

    @staticmethod
    def claim_values(now: datetime) -> dict[str, Any]:
        return {"reminded_at": now}

    @staticmethod
    def claimed() -> ColumnElement[bool]:
        return Invitation.claimed_for == MessagePurpose.REMINDER

    @staticmethod
    def holds(invitation: Invitation, worker_id: str) -> bool:
        return invitation.claimed_for is MessagePurpose.REMINDER and invitation.owner == worker_id

    @staticmethod
    def sent(
        invitation: Invitation,
        message: Message,
        provider_id: str | None,
        definition: CampaignDefinition,
        zone_name: str,
        now: datetime,
    ) -> None:
        _mark_message_sent(message, provider_id, now)
        release(invitation, now)

    @staticmethod
    def put_back(invitation: Invitation, due_at: datetime, now: datetime) -> None:
        invitation.reminded_at = None
        invitation.reminder_due_at = due_at
        release(invitation, now)

    @staticmethod
    def after_rejection(invitation: Invitation, now: datetime) -> None:
        # A reminder goes by the channel the survey went by; that channel will not work again.
        ReminderFlow.give_up(invitation, "no reminder: its channel refused it for good", now)

    @staticmethod
    def give_up(invitation: Invitation, reason: str, now: datetime) -> None:
        invitation.reminder_due_at = None
        invitation.last_error = reason
        release(invitation, now)

    @staticmethod
    def attempts(invitation: Invitation, *, session: Session) -> int:
        """Tries so far: each claim that got as far as staging left a reminder message."""
        count = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.invitation_id == invitation.id, Message.purpose == MessagePurpose.REMINDER)
        )
        return count or 0

    @staticmethod
    def unverifiable(invitation: Invitation, reason: str, now: datetime) -> None:
        ReminderFlow.give_up(invitation, reason + ", so the reminder is not sent again", now)


Flow = type[InvitationFlow] | type[ReminderFlow]
FLOWS: dict[MessagePurpose, Flow] = {flow.purpose: flow for flow in (InvitationFlow, ReminderFlow)}


def complete(
    flow: Flow,
    invitation: Invitation,
    message: Message,
    provider_id: str,
    sent_at: datetime,
    *,
    now: datetime,
    session: Session,
) -> None:
    """Mark as sent at `sent_at` a send found in the provider's log after its worker stopped.

    Its status callbacks may have come while nobody knew the provider id (they were held): applied now, so a
    carrier's "undelivered, opted out" is not lost because the send was settled by reconciliation.
    """
    campaign = session.get(Campaign, invitation.campaign_id)
    contact = session.get(Contact, invitation.contact_id)
    assert campaign is not None and contact is not None
    definition = definition_from_json(campaign.definition)
    zone = zone_for(contact.timezone, definition.timezone, "UTC")
    flow.sent(invitation, message, provider_id, definition, zone.key, sent_at)
    session.flush()  # the callbacks find the message by its provider id
    apply_held([provider_id], now=now, session=session)
