"""imported responses: a source key that makes a re-import add nothing twice, and what the old tool kept with them

`responses.source_key` ("delighted:<response id>") is unique where set; `responses.imported` holds the tags,
notes and permalink a Delighted export carried. Both stay empty for answers collected here.

Downgrading drops both columns; imported responses stay, as ordinary responses.

Revision ID: 0016_response_imports
Revises: 0015_consent_ledger
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0016_response_imports'
down_revision: str | None = '0015_consent_ledger'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_key', sa.String(length=160), nullable=True))
        batch_op.add_column(
            sa.Column(
                'imported',
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                nullable=True,
            )
        )
        batch_op.create_unique_constraint(batch_op.f('uq_responses_source_key'), ['source_key'])


def downgrade() -> None:
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_responses_source_key'), type_='unique')
        batch_op.drop_column('imported')
        batch_op.drop_column('source_key')
