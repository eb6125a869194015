"""Delivery status callbacks: a message's status only moves forward, and retries change nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.contacts.consents import opt_out_address
from storage.enums import Channel, Direction, InvitationState
from storage.tables import Invitation, Message

# Twilio's statuses in the order they happen; the final ones share the last rank.
_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}
FAILED = ("undelivered", "failed")
UNSUBSCRIBED = "21610"


def apply_status(
    provider_id: str, status: str, error_code: str | None, *, now: datetime, session: Session
) -> bool:
    """Apply one callback; returns False when the message is unknown or the status is not news."""
    message = session.scalar(
        select(Message).where(Message.channel == Channel.SMS, Message.provider_id == provider_id)
    )
    status = status.strip().lower()
    if status not in _RANK:
        return False
    if message is None:
        _hold(provider_id, status, error_code, now=now, session=session)
        return False
    if _RANK[status] <= _RANK.get(message.status, -1):
        return False  # a repeat, or an older status arriving late
    message.status, message.updated_at = status, now
    if error_code:
        message.error_code = error_code
    if error_code == UNSUBSCRIBED:
        opt_out_address(Channel.SMS, message.address, source="twilio-21610", at=now, session=session)
    invitation = session.get(Invitation, message.invitation_id) if message.invitation_id else None
    if invitation is not None and message.purpose == "invitation":
        _update_invitation(invitation, status, error_code, now)
    return True


def _update_invitation(invitation: Invitation, status: str, error_code: str | None, now: datetime) -> None:
    if status == "delivered" and invitation.state is InvitationState.SENT:
        invitation.state, invitation.delivered_at = InvitationState.DELIVERED, now
    elif status in FAILED and invitation.state in (InvitationState.SENT, InvitationState.DELIVERED):
        invitation.state = InvitationState.UNDELIVERABLE
        invitation.last_error = f"carrier reported {status}" + (
            f" (error {error_code})" if error_code else ""
        )
        invitation.reminder_due_at = None
    invitation.updated_at = now


# A callback can arrive before the dispatcher has stored the provider id of its message (it records a whole
# batch at once): such a callback is held as a row and applied when the id is recorded.
HELD = "status"


def _hold(provider_id: str, status: str, error_code: str | None, *, now: datetime, session: Session) -> None:
    session.add(
        Message(
            direction=Direction.INBOUND,
            channel=Channel.SMS,
            purpose=HELD,
            address="",
            body=provider_id,
            status="held",
            error_code=error_code,
            raw={"MessageStatus": status},
            created_at=now,
            updated_at=now,
        )
    )


def apply_held(provider_ids: list[str], *, now: datetime, session: Session) -> int:
    """Apply callbacks that arrived before these provider ids were recorded; returns how many."""
    if not provider_ids:
        return 0
    held = session.scalars(
        select(Message)
        .where(Message.purpose == HELD, Message.status == "held", Message.body.in_(provider_ids))
        .order_by(Message.id)
    ).all()
    for row in held:
        status = str((row.raw or {}).get("MessageStatus", ""))
        apply_status(row.body or "", status, row.error_code, now=now, session=session)
        row.status = "applied"
    return len(held)
