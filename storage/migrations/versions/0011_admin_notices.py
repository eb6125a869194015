"""admin notices: plain messages to SLACK_ADMIN_CHANNEL when a channel pauses or Slack alerts are held, and back

`notice_subjects`: what the admin channel was last told about each subject (held or not), so a notice is queued
once per change. `admin_notices`: the outbox of those messages, posted at most once each.

Revision ID: 0011_admin_notices
Revises: 0010_inbound_claims
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0011_admin_notices'
down_revision: str | None = '0010_inbound_claims'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'admin_notices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column(
            'state',
            sa.Enum('pending', 'posting', 'posted', 'failed', name='noticestate', native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('next_attempt_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('posted_at', storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('ts', sa.String(length=32), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_notices')),
    )
    with op.batch_alter_table('admin_notices', schema=None) as batch_op:
        batch_op.create_index('ix_admin_notices_state_next_attempt_at', ['state', 'next_attempt_at'], unique=False)
    op.create_table(
        'notice_subjects',
        sa.Column('subject', sa.String(length=64), nullable=False),
        sa.Column('held', sa.Boolean(), nullable=False),
        sa.Column('changed_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('subject', name=op.f('pk_notice_subjects')),
    )


def downgrade() -> None:
    op.drop_table('notice_subjects')
    with op.batch_alter_table('admin_notices', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_notices_state_next_attempt_at')
    op.drop_table('admin_notices')
