"""message vocabularies: send state, delivery status and inbound state in columns of their own; claim purpose

`messages.status` held three vocabularies: our send states, Twilio's delivery statuses (a status callback
overwrote ours) and the handling of inbound rows. Each gets its own column:

- outbound rows: a status only Twilio reports (queued, delivered, ...), or "sending"/"failed" on a row that has a
  provider id (only a callback can have written those), means Twilio accepted the message: send_state "sent",
  delivery_status that status. Anything else is our own send state. Twilio's own "sent" cannot be told from ours
  and is kept as our send state "sent", with no delivery status (the next callback moves it on).
- inbound rows: a reply's "received"/"processed" moves as it is; a held status callback is "received" until it
  is applied ("processed").

`invitations.claimed_for` says what the current claim is for (the survey or its reminder).

Revision ID: 0005_message_vocabularies
Revises: 0004_alert_revision
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005_message_vocabularies'
down_revision: str | None = '0004_alert_revision'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEND_STATES = ('sending', 'sent', 'rejected', 'failed', 'unknown', 'not_sent', 'twiml')
DELIVERY_STATUSES = ('accepted', 'scheduled', 'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'read')
INBOUND_STATES = ('received', 'processed')
PURPOSES = ('invitation', 'reminder', 'conversation', 'clarification', 'reply', 'status')
ONLY_TWILIO = ('accepted', 'scheduled', 'queued', 'delivered', 'undelivered', 'read')
EITHER = ('sending', 'failed')  # ours before a provider id exists, Twilio's after


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_state', sa.Enum(*SEND_STATES, name='sendstate', native_enum=False, length=24), nullable=True))
        batch_op.add_column(sa.Column('delivery_status', sa.Enum(*DELIVERY_STATUSES, name='deliverystatus', native_enum=False, length=24), nullable=True))
        batch_op.add_column(sa.Column('inbound_state', sa.Enum(*INBOUND_STATES, name='inboundstate', native_enum=False, length=24), nullable=True))
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_for', sa.Enum(*PURPOSES, name='messagepurpose', native_enum=False, length=24), nullable=True))

    from_twilio = (
        f"direction = 'outbound' AND (status IN ({_quoted(ONLY_TWILIO)}) "
        f"OR (status IN ({_quoted(EITHER)}) AND provider_id IS NOT NULL))"
    )
    op.execute(f"UPDATE messages SET send_state = 'sent', delivery_status = status WHERE {from_twilio}")
    op.execute(
        "UPDATE messages SET send_state = status "
        f"WHERE direction = 'outbound' AND send_state IS NULL AND status IN ({_quoted(SEND_STATES)})"
    )
    op.execute(
        "UPDATE messages SET inbound_state = CASE status WHEN 'held' THEN 'received' "
        "WHEN 'applied' THEN 'processed' ELSE status END WHERE direction = 'inbound'"
    )
    op.execute("UPDATE invitations SET claimed_for = 'invitation' WHERE state = 'claimed'")

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('status')


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=24), nullable=True))

    # A callback's status overwrote ours, as it did before the columns were split.
    op.execute(
        "UPDATE messages SET status = COALESCE(delivery_status, send_state) WHERE direction = 'outbound'"
    )
    op.execute(
        "UPDATE messages SET status = CASE inbound_state WHEN 'received' THEN 'held' ELSE 'applied' END "
        "WHERE direction = 'inbound' AND purpose = 'status'"
    )
    op.execute(
        "UPDATE messages SET status = inbound_state WHERE direction = 'inbound' AND purpose <> 'status'"
    )
    op.execute("UPDATE messages SET status = 'unknown' WHERE status IS NULL")
    # A reminder claim in flight is not a claim the older code knows: the reminder is simply done.
    op.execute("UPDATE invitations SET owner = NULL WHERE claimed_for = 'reminder'")

    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_column('claimed_for')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=24), nullable=False)
        batch_op.drop_column('inbound_state')
        batch_op.drop_column('delivery_status')
        batch_op.drop_column('send_state')
