"""What the migration scripts say the newest revision is."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from storage.db import MIGRATIONS_DIR


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
