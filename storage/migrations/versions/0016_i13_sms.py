"""short survey links for SMS: `invitations.short_token`, unique, given when a survey is composed for SMS

Existing invitations keep their one link (`/s/<token>`); the column stays empty for them.

Revision ID: 0016_i13_sms
Revises: 0015_consent_ledger
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016_i13_sms'
down_revision: str | None = '0015_consent_ledger'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('invitations', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('short_token', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_invitations_short_token'), ['short_token'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_short_token'))
        batch_op.drop_column('short_token')
