"""late answers: a conversation answer whose TwiML came too late for Twilio is texted over REST, once

`messages.send_state` gains "late_twiml": the answer was committed to go out in the webhook's TwiML, but the
webhook answered too late for Twilio's 15 s timeout (or Twilio had hung up). The sweeper texts it over the REST
API, unless Twilio's retry of the reply takes it first. A partial index over those rows lets the sweeper find
them without reading every message. Existing answers keep their states.

Downgrading turns "late_twiml" back into "twiml", the only answer state the older code knows (it gives such an
answer to a retry that comes after a late handling); the index is dropped.

Revision ID: 0012_late_answers
Revises: 0011_admin_notices
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012_late_answers'
down_revision: str | None = '0011_admin_notices'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IS_LATE_TWIML = "send_state = 'late_twiml'"


def upgrade() -> None:
    op.create_index(
        'ix_messages_late_twiml',
        'messages',
        ['id'],
        unique=False,
        sqlite_where=sa.text(IS_LATE_TWIML),
        postgresql_where=sa.text(IS_LATE_TWIML),
    )


def downgrade() -> None:
    op.drop_index('ix_messages_late_twiml', table_name='messages')
    op.execute(f"UPDATE messages SET send_state = 'twiml' WHERE {IS_LATE_TWIML}")
