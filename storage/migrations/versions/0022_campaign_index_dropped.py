"""campaign index dropped: a campaign's invitations are read from the (campaign, contact, due time) index

`ix_invitations_campaign_id` held a prefix of `ix_invitations_campaign_id_contact_id_due_at`, which serves
every read by campaign as well. Beside it, PostgreSQL, without statistics on the outbox's columns (a fresh
install, or an outbox emptied and vacuumed), took the campaign's index, the smaller one, for the planner's
per-contact history of a campaign: every invitation of the campaign planned so far read once per contact, 1-2 s
a range of 5,000 contacts at 1,000,000 contacts instead of 0.07 s. And every invitation written kept one index
fewer up to date.

Downgrading restores the index.

Revision ID: 0022_campaign_index_dropped
Revises: 0021_reply_number_index
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0022_campaign_index_dropped'
down_revision: str | None = '0021_reply_number_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_invitations_campaign_id', table_name='invitations')


def downgrade() -> None:
    op.create_index('ix_invitations_campaign_id', 'invitations', ['campaign_id'], unique=False)
