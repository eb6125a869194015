"""inbound claims: a reply is handled under a claim on its row; an outbound answer names the reply it answers

`messages.claimed_by` / `claimed_at`: the request or sweep handling an inbound reply (`inbound_state`
"processing"), taken over when stale. `messages.reply_to_id`: the inbound reply an outbound answer answers (the
stored TwiML answer given again to a retry whose first answer came too late for Twilio). An index on
(`inbound_state`, `created_at`) lets the sweeper find replies left unhandled.

Revision ID: 0010_inbound_claims
Revises: 0009_channel_pauses
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0010_inbound_claims'
down_revision: str | None = '0009_channel_pauses'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reply_to_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_messages_reply_to_id_messages'), 'messages', ['reply_to_id'], ['id'], ondelete='SET NULL'
        )
        batch_op.create_index(batch_op.f('ix_messages_reply_to_id'), ['reply_to_id'], unique=False)
        batch_op.create_index('ix_messages_inbound_state_created_at', ['inbound_state', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_inbound_state_created_at')
        batch_op.drop_index(batch_op.f('ix_messages_reply_to_id'))
        batch_op.drop_constraint(batch_op.f('fk_messages_reply_to_id_messages'), type_='foreignkey')
        batch_op.drop_column('reply_to_id')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claimed_by')
