"""contact history: a customer's real start and their last survey elsewhere; an index for "next due"

`contacts.customer_since` is when the person became a customer (the first survey of a relationship campaign
waits `first_after_days` from it; without it, from the contact's creation, as before) and
`contacts.last_surveyed_at` when another tool last surveyed them (the fatigue rule counts it as well as our
own invitations). Both are null for existing contacts, which keeps their timing unchanged.

`ix_invitations_campaign_id_contact_id_due_at` serves the planner's per-contact history of a campaign (how
many cycles, the last due time) from the index alone, one id range at a time.

Downgrading drops the index and the two columns (the imported history is lost).

Revision ID: 0014_contact_history
Revises: 0013_metrics_indexes
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = '0014_contact_history'
down_revision: str | None = '0013_metrics_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('contacts') as batch:
        batch.add_column(sa.Column('customer_since', UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('last_surveyed_at', UTCDateTime(), nullable=True))
    op.create_index(
        'ix_invitations_campaign_id_contact_id_due_at',
        'invitations',
        ['campaign_id', 'contact_id', 'due_at'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index('ix_invitations_campaign_id_contact_id_due_at', table_name='invitations')
    with op.batch_alter_table('contacts') as batch:
        batch.drop_column('last_surveyed_at')
        batch.drop_column('customer_since')
