"""saved themes: a keyword or phrase and the /nps query it is tracked within (`nps themes add|list|show`)

Downgrading drops the table.

Revision ID: 0017_saved_themes
Revises: 0016_response_imports
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0017_saved_themes'
down_revision: str | None = '0016_response_imports'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'saved_themes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('phrase', sa.String(length=200), nullable=False),
        sa.Column('query', sa.String(length=500), nullable=False),
        sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_themes')),
        sa.UniqueConstraint('name', name=op.f('uq_saved_themes_name')),
    )


def downgrade() -> None:
    op.drop_table('saved_themes')
