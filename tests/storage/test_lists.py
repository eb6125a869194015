"""`among`: a batch's `IN` list, as one array parameter on PostgreSQL, with the same answers on every engine."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.enums import AuditAction, AuditEntity
from storage.lists import among
from storage.tables import AuditEntry

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def stored(db: Database, *entity_ids: str) -> list[int]:
    with db.transaction() as session:
        entries = [
            AuditEntry(
                actor="cli",
                action=AuditAction.CONTACT_CREATED,
                entity_type=AuditEntity.CONTACT,
                entity_id=entity_id,
                at=AT,
            )
            for entity_id in entity_ids
        ]
        session.add_all(entries)
        session.flush()
        return [entry.id for entry in entries]


def test_among_finds_the_rows_whose_value_is_listed_and_none_for_an_empty_list(db: Database) -> None:
    ids = stored(db, "ana", "ben", "cy", "dee")
    with db.transaction() as session:
        by_id = select(AuditEntry.entity_id).where(
            among(AuditEntry.id, [ids[1], ids[3], 10**6], session=session)
        )
        by_text = select(AuditEntry.id).where(
            among(AuditEntry.entity_id, {"cy", "ana", "zed"}, session=session)
        )
        nothing = select(AuditEntry.id).where(among(AuditEntry.id, [], session=session))
        assert sorted(session.scalars(by_id)) == ["ben", "dee"]
        assert sorted(session.scalars(by_text)) == [ids[0], ids[2]]
        assert list(session.scalars(nothing)) == []


def test_a_value_longer_than_its_column_matches_no_row_not_the_one_holding_its_start(db: Database) -> None:
    stored(db, "a" * 64)  # entity_id holds at most 64 characters
    with db.transaction() as session:
        longer = select(AuditEntry.id).where(among(AuditEntry.entity_id, ["a" * 64 + "b"], session=session))
        assert list(session.scalars(longer)) == []


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_among_sends_one_parameter_on_postgresql_whatever_the_list_s_length(db: Database) -> None:
    with db.transaction() as session:
        compiled = [
            select(AuditEntry.id)
            .where(among(AuditEntry.id, range(n), session=session))
            .compile(session.get_bind())
            for n in (3, 200)
        ]
    assert compiled[0].string == compiled[1].string
    assert [len(c.params) for c in compiled] == [1, 1]
