"""channel pauses: a channel refused for our setup, or down for everyone, is paused for every worker

Revision ID: 0009_channel_pauses
Revises: 0008_alert_claims
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0009_channel_pauses'
down_revision: str | None = '0008_alert_claims'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'channel_pauses',
        sa.Column('channel', sa.Enum('sms', 'email', name='channel', native_enum=False, length=24), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('since', storage.types.UTCDateTime(), nullable=False),
        sa.Column('until', storage.types.UTCDateTime(), nullable=False),
        sa.Column('probes', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('channel', name=op.f('pk_channel_pauses')),
    )


def downgrade() -> None:
    op.drop_table('channel_pauses')
