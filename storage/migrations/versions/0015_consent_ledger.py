"""consent ledger: every opt-out and opt-in with its time, channel, address, source and the message behind it

`consent_changes` is written with every change of `consents` (which keeps the state now). Each consent stored
before this revision gets one ledger row from what `consents.source` says: "sms:STOP" a keyword, "twilio-21610"
Twilio's refusal, "email:one-click" / "...:unsubscribe-page" the unsubscribe link, anything else an admin's.

Downgrading drops the ledger; `consents` is unchanged either way.

Revision ID: 0015_consent_ledger
Revises: 0014_contact_history
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0015_consent_ledger'
down_revision: str | None = '0014_contact_history'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = ('keyword', 'free_text', 'unsubscribe_link', 'twilio_21610', 'import', 'admin')


def upgrade() -> None:
    op.create_table(
        'consent_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.Enum('sms', 'email', name='channel', native_enum=False, length=24), nullable=False),
        sa.Column('address', sa.String(length=320), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=True),
        sa.Column(
            'status',
            sa.Enum('opted_in', 'opted_out', name='consentstatus', native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column('source', sa.Enum(*SOURCES, name='consentsource', native_enum=False, length=24), nullable=False),
        sa.Column('detail', sa.String(length=200), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('changed_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['contact_id'], ['contacts.id'], name=op.f('fk_consent_changes_contact_id_contacts'), ondelete='SET NULL'
        ),
        sa.ForeignKeyConstraint(
            ['message_id'], ['messages.id'], name=op.f('fk_consent_changes_message_id_messages'), ondelete='SET NULL'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_changes')),
    )
    with op.batch_alter_table('consent_changes', schema=None) as batch_op:
        batch_op.create_index('ix_consent_changes_channel_address', ['channel', 'address'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_changes_contact_id'), ['contact_id'], unique=False)
    op.execute(
        """
        INSERT INTO consent_changes (channel, address, contact_id, status, source, detail, changed_at)
        SELECT channel, address, contact_id, status,
               CASE
                   WHEN source LIKE '%one-click' OR source LIKE '%unsubscribe-page' THEN 'unsubscribe_link'
                   WHEN source LIKE '%-21610' THEN 'twilio_21610'
                   WHEN source LIKE 'sms:%' THEN 'keyword'
                   ELSE 'admin'
               END,
               source, changed_at
        FROM consents
        ORDER BY id
        """
    )


def downgrade() -> None:
    with op.batch_alter_table('consent_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_changes_contact_id'))
        batch_op.drop_index('ix_consent_changes_channel_address')
    op.drop_table('consent_changes')
