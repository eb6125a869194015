from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from storage.db import Database
from storage.enums import AuditAction, AuditEntity
from storage.tables import AuditEntry

ACTION, ENTITY = AuditAction.CONTACT_CREATED, AuditEntity.CONTACT


def test_datetimes_come_back_aware_in_utc(db: Database) -> None:
    berlin_noon = datetime(2026, 3, 29, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with db.transaction() as session:
        session.add(AuditEntry(actor="cli", action=ACTION, entity_type=ENTITY, at=berlin_noon))
    with db.transaction() as session:
        stored = session.scalar(select(AuditEntry.at))
    assert stored == datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    assert stored.tzinfo == UTC


def test_datetimes_order_correctly_across_offsets(db: Database) -> None:
    early = datetime(2026, 1, 1, 23, 0, tzinfo=timezone(timedelta(hours=-5)))  # 04:00 UTC next day
    late = datetime(2026, 1, 2, 5, 0, tzinfo=UTC)
    with db.transaction() as session:
        session.add_all(
            [
                AuditEntry(actor="a", action=ACTION, entity_type=ENTITY, entity_id="late", at=late),
                AuditEntry(actor="a", action=ACTION, entity_type=ENTITY, entity_id="early", at=early),
            ]
        )
    with db.transaction() as session:
        labels = session.scalars(select(AuditEntry.entity_id).order_by(AuditEntry.at)).all()
    assert labels == ["early", "late"]


def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"), db.transaction() as session:
        session.add(AuditEntry(actor="a", action=ACTION, entity_type=ENTITY, at=datetime(2026, 1, 1)))
        session.flush()
