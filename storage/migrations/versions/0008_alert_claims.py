"""alert claims: when an alert was claimed for posting, whether it was withdrawn, which channel holds it

`claimed_at` tells the poster where to search a channel's history for a message Slack may have taken although
its ts was never recorded; `withdrawn_at` marks an alert whose score was corrected away (its message is edited to
say so); `held_channel` names the broken channel a pending alert waits on. The new states (uncertain, review,
withdrawn) fit the existing short string column.

Revision ID: 0008_alert_claims
Revises: 0007_one_pending_invitation
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0008_alert_claims'
down_revision: str | None = '0007_one_pending_invitation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('slack_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_at', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('withdrawn_at', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('held_channel', sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Alerts in the new states go back to the nearest old one: uncertain waits (pending), review and withdrawn
    # are settled (failed and posted).
    op.execute("UPDATE slack_alerts SET state = 'pending' WHERE state = 'uncertain'")
    op.execute("UPDATE slack_alerts SET state = 'failed' WHERE state = 'review'")
    op.execute("UPDATE slack_alerts SET state = 'posted' WHERE state = 'withdrawn'")
    with op.batch_alter_table('slack_alerts', schema=None) as batch_op:
        batch_op.drop_column('held_channel')
        batch_op.drop_column('withdrawn_at')
        batch_op.drop_column('claimed_at')
