"""short survey links for SMS, and test contacts whose surveys never count

`invitations.short_token` (unique) is given when a survey is composed for SMS; existing invitations keep their
one link (`/s/<token>`). `contacts.test` and `responses.test` mark the test addresses of `nps campaigns test`
and their answers (false for everything stored before); the score index gets `test` as its last column so
the score queries still read only the index.

Revision ID: 0018_sms_links_and_tests
Revises: 0017_saved_themes
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018_sms_links_and_tests'
down_revision: str | None = '0017_saved_themes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('invitations', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('short_token', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_invitations_short_token'), ['short_token'], unique=True)
    with op.batch_alter_table('contacts', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('test', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('responses', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('test', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_index('ix_responses_category_answered_at')
        batch_op.create_index('ix_responses_category_answered_at', ['category', 'answered_at', 'test'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.drop_index('ix_responses_category_answered_at')
        batch_op.create_index('ix_responses_category_answered_at', ['category', 'answered_at'], unique=False)
        batch_op.drop_column('test')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('test')
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_short_token'))
        batch_op.drop_column('short_token')
