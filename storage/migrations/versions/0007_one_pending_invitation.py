"""one pending invitation: at most one invitation per contact in the states planned or claimed

A partial unique index over `invitations.contact_id` where the state is pending, on SQLite and PostgreSQL, so
that two planners (the relationship planner and POST /api/v1/events, or two processes) cannot both queue a
survey for one person: the second insert waits for the first to commit and is then skipped.

Existing data: a contact may already have several pending invitations (that is the bug this closes). For each
such contact the oldest one (lowest id) is kept and every newer one is cancelled, with `last_error` saying why,
before the index is created. Claimed rows are kept before planned ones, since a worker may be sending them.
Downgrading drops the index; the cancelled rows stay cancelled.

Revision ID: 0007_one_pending_invitation
Revises: 0006_audit_vocabularies
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_one_pending_invitation'
down_revision: str | None = '0006_audit_vocabularies'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "state IN ('planned', 'claimed')"
REASON = "cancelled by migration 0007: another survey was already pending for this contact"


def upgrade() -> None:
    _cancel_newer_duplicates()
    op.create_index(
        'ux_invitations_one_pending_per_contact',
        'invitations',
        ['contact_id'],
        unique=True,
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )


def _cancel_newer_duplicates() -> None:
    # Keep per contact the claimed row with the lowest id if there is one, else the planned row with the lowest id.
    op.execute(
        f"""
        UPDATE invitations SET state = 'cancelled', owner = NULL, claimed_for = NULL, last_error = '{REASON}'
        WHERE {PENDING} AND id <> (
            SELECT keep.id FROM invitations AS keep
            WHERE keep.contact_id = invitations.contact_id AND keep.{PENDING}
            ORDER BY CASE WHEN keep.state = 'claimed' THEN 0 ELSE 1 END, keep.id
            LIMIT 1
        )
        """
    )


def downgrade() -> None:
    op.drop_index('ux_invitations_one_pending_per_contact', table_name='invitations')
