"""A migration refused on SQLite leaves the database as it found it: schema and recorded revision together.

pysqlite opens a transaction only before INSERT, UPDATE, DELETE or REPLACE: a migration's CREATE TABLE before
its first row change ran outside any transaction and stayed when the migration was rolled back, leaving a
schema newer than the revision recorded, which the next `nps db upgrade` then stumbles over.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect

from storage.db import Database, current_revision, upgrade
from storage.enums import Channel, Direction, MessagePurpose

BEFORE = "0016_response_imports"  # the next one, 0017_saved_themes, starts with a CREATE TABLE


def test_a_migration_refused_for_a_broken_reference_leaves_schema_and_revision_as_they_were(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    db = Database.connect(f"sqlite:///{path}")
    try:
        upgrade(db.engine, BEFORE)
        raw = sqlite3.connect(path)  # foreign keys not enforced: a row pointing at no invitation
        raw.execute(
            "INSERT INTO messages (direction, channel, purpose, address, invitation_id, created_at, updated_at)"
            " VALUES (?, ?, ?, '+4915112345678', 999, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            (Direction.OUTBOUND.value, Channel.SMS.value, MessagePurpose.INVITATION.value),
        )
        raw.commit()
        raw.close()
        tables_before = set(inspect(db.engine).get_table_names())

        with pytest.raises(RuntimeError, match="broken references"):
            upgrade(db.engine)

        assert current_revision(db.engine) == BEFORE
        assert set(inspect(db.engine).get_table_names()) == tables_before
    finally:
        db.dispose()
