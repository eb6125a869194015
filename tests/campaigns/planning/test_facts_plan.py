"""The planner's opt-out facts are read through the consents' (channel, address) index, not by a scan.

Every range of a large base hands its due but ineligible contacts to the contact-by-contact planner, which
reads their opted-out addresses (campaigns.planning.facts.opted_out_addresses). Asked by address alone, the
database could not use the index that starts with the channel and read every consent ever recorded, once
per range: a cost that grows with the base times the number of ranges. These tests take the query exactly as
the planner sends it, ask the database for its plan, and require the index.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, text

from campaigns.planning.facts import opted_out_addresses
from storage.db import Database
from storage.enums import Channel, ConsentStatus
from storage.tables import Consent
from tests.campaigns.dispatch.test_claim_plan import nodes, outline, postgres_plan

POSTGRES_INDEX = "uq_consents_channel_address"


def phone(n: int) -> str:
    return f"+4915120{n:06d}"


def email(n: int) -> str:
    return f"c{n}@example.com"


def fill(db: Database, count: int) -> None:
    """`count` phones and `count` emails, every third one opted out."""
    rows = [
        {
            "channel": channel,
            "address": address(n),
            "status": ConsentStatus.OPTED_OUT if n % 3 == 0 else ConsentStatus.OPTED_IN,
            "source": "test",
        }
        for n in range(count)
        for channel, address in ((Channel.SMS, phone), (Channel.EMAIL, email))
    ]
    with db.transaction() as session:
        session.execute(insert(Consent), rows)


@contextmanager
def captured(db: Database) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM consents" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)


def facts_statement(db: Database) -> tuple[str, Any]:
    wanted = [phone(3), phone(4), email(6), email(7), "+49000"]
    with captured(db) as seen, db.transaction() as session:
        found = opted_out_addresses(wanted, session=session)
    assert found == {(Channel.SMS, phone(3)), (Channel.EMAIL, email(6))}
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh", "analyzed"])
def test_sqlite_reads_opt_outs_through_the_address_index(sqlite_db: Database, analyzed: bool) -> None:
    fill(sqlite_db, 500)
    if analyzed:
        with sqlite_db.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    statement, parameters = facts_statement(sqlite_db)
    with sqlite_db.engine.connect() as connection:
        steps = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert any(step.startswith("SEARCH consents USING INDEX") and "address=?" in step for step in steps), (
        steps
    )
    assert not any(step.startswith("SCAN consents") for step in steps), steps


@pytest.mark.postgres
def test_postgres_reads_opt_outs_through_the_address_index(empty_postgres_db: Database) -> None:
    fill(empty_postgres_db, 20_000)
    with empty_postgres_db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE consents"))
    plan = postgres_plan(empty_postgres_db, *facts_statement(empty_postgres_db))
    found = list(nodes(plan))
    described = "\n".join(outline(plan))
    on_consents = [n for n in found if n.get("Relation Name") == "consents"]
    assert on_consents and all(n.get("Index Name") == POSTGRES_INDEX for n in on_consents), described
