"""reply number index: a reply finds the newest survey text sent to its number from the number's index

An inbound SMS looks up the newest survey text (invitation or reminder) sent to its number: the number, then
the newest message id (campaigns.replies.responses: the survey choice). The index so far held (address,
created_at): it found the number's rows but not in id order, and SQLite, planning without statistics, preferred
the index of outbound outcomes (direction, channel, purpose, send state), which holds every survey text ever
sent, and sorted them: a third of a reply's CPU with 10,000 surveys sent, growing with every campaign.

`ix_messages_address_id` (address, id) replaces (address, created_at). Its other readers, the texts sent to a
number since a time (campaigns.dispatch.quiet) and the numbers already told how to opt out
(campaigns.planning.facts), read a number's few rows from it as well.

Downgrading restores the (address, created_at) index.

Revision ID: 0021_reply_number_index
Revises: 0020_claim_indexes
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0021_reply_number_index'
down_revision: str | None = '0020_claim_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_messages_address_id', 'messages', ['address', 'id'], unique=False)
    op.drop_index('ix_messages_address_created_at', table_name='messages')


def downgrade() -> None:
    op.create_index('ix_messages_address_created_at', 'messages', ['address', 'created_at'], unique=False)
    op.drop_index('ix_messages_address_id', table_name='messages')
