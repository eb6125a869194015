"""claim indexes: the dispatcher reads a batch of due rows from an index in claim order, not by sorting them all

The dispatcher claims the survey invitations that are `planned` and due, and the reminders of those `sent` or
`delivered` that are due, unanswered and not yet claimed, each time the first `batch_size` rows by due time,
then id (campaigns.dispatch.outbox: InvitationFlow.due, ReminderFlow.due; dispatcher._claim). The indexes so
far held (state, due time): rows due at the same moment came out in no id order, and the reminder's two states
as two runs, so every batch read and sorted every due row (2.1 s a batch on PostgreSQL with a million surveys
due in the same minute).

- `ix_invitations_state_due_at_id` (state, due_at, id) replaces (state, due_at), which is its prefix: the
  survey claim reads its batch as the first rows of one state's run.
- `ix_invitations_claim_reminder_due` (reminder_due_at, id), partial: only rows with a reminder due and not
  yet claimed or answered. The states are checked on the rows read. The condition holds no state on purpose:
  the claim binds its states as parameters, and neither SQLite nor a generic PostgreSQL plan can match a bound
  value against an index's condition; `IS NULL` is written out, so both use the index.

Downgrading restores the (state, due_at) index and drops the new ones.

Revision ID: 0020_claim_indexes
Revises: 0019_recovery_surveys
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020_claim_indexes'
down_revision: str | None = '0019_recovery_surveys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AWAITING_REMINDER = "reminder_due_at IS NOT NULL AND reminded_at IS NULL AND responded_at IS NULL AND owner IS NULL"


def upgrade() -> None:
    op.create_index('ix_invitations_state_due_at_id', 'invitations', ['state', 'due_at', 'id'], unique=False)
    op.drop_index('ix_invitations_state_due_at', table_name='invitations')
    op.create_index(
        'ix_invitations_claim_reminder_due',
        'invitations',
        ['reminder_due_at', 'id'],
        unique=False,
        sqlite_where=sa.text(AWAITING_REMINDER),
        postgresql_where=sa.text(AWAITING_REMINDER),
    )


def downgrade() -> None:
    op.drop_index('ix_invitations_claim_reminder_due', table_name='invitations')
    op.create_index('ix_invitations_state_due_at', 'invitations', ['state', 'due_at'], unique=False)
    op.drop_index('ix_invitations_state_due_at_id', table_name='invitations')
