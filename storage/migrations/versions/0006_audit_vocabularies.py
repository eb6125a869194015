"""audit vocabularies: audit actions, audited record kinds and follow-up contact methods are closed enums

The columns keep their types (short strings); this revision only brings stored values into the vocabularies.
The command line used to record a campaign's pause and resume as "campaign.paused" / "campaign.active", Slack as
"campaign.pause" / "campaign.resume"; both now write the latter. A contact method outside the Resolve modal's
choices (only a forged payload could store one) is cleared.

Revision ID: 0006_audit_vocabularies
Revises: 0005_message_vocabularies
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0006_audit_vocabularies'
down_revision: str | None = '0005_message_vocabularies'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMED = {'campaign.paused': 'campaign.pause', 'campaign.active': 'campaign.resume'}
CONTACT_METHODS = ('phone call', 'email', 'SMS', 'meeting', 'other')


def upgrade() -> None:
    for old, new in RENAMED.items():
        op.execute(f"UPDATE audit_log SET action = '{new}' WHERE action = '{old}' AND actor = 'cli'")
    methods = ", ".join(f"'{method}'" for method in CONTACT_METHODS)
    op.execute(f"UPDATE follow_ups SET contact_method = NULL WHERE contact_method NOT IN ({methods})")


def downgrade() -> None:
    # The old schema accepted any string, so the new values stay valid there; only the command line's own
    # spelling of pause and resume is restored.
    for old, new in RENAMED.items():
        op.execute(f"UPDATE audit_log SET action = '{old}' WHERE action = '{new}' AND actor = 'cli'")
