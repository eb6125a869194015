"""recovery re-surveys: an invitation may be the re-survey of a resolved follow-up

`invitations.recovery_of_follow_up_id` names the follow-up a recovery re-survey asks about (a campaign's
`recovery: {after_days: N}`); it is unique, so a follow-up gets at most one re-survey whoever plans it, and
null for every invitation stored before.

Revision ID: 0019_recovery_surveys
Revises: 0018_sms_links_and_tests
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019_recovery_surveys'
down_revision: str | None = '0018_sms_links_and_tests'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recovery_of_follow_up_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_invitations_recovery_of_follow_up_id_follow_ups'),
            'follow_ups',
            ['recovery_of_follow_up_id'],
            ['id'],
            ondelete='SET NULL',
        )
        batch_op.create_unique_constraint(
            batch_op.f('uq_invitations_recovery_of_follow_up_id'), ['recovery_of_follow_up_id']
        )


def downgrade() -> None:
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_invitations_recovery_of_follow_up_id'), type_='unique')
        batch_op.drop_constraint(
            batch_op.f('fk_invitations_recovery_of_follow_up_id_follow_ups'), type_='foreignkey'
        )
        batch_op.drop_column('recovery_of_follow_up_id')
