"""The dispatcher's claim reads the due rows from an index in claim order: no scan and sort of the whole outbox.

When a campaign queues a million surveys for the same minute, every batch of 200 used to read and sort every
due row (2.1 s per batch on PostgreSQL). These tests take the claim statement exactly as the dispatcher sends
it (captured on its way to the driver), ask the database for its plan, and require an index scan that
delivers rows in the claim's order, for both purposes the dispatcher claims: the survey and its reminder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, text

from campaigns.clock import ManualClock
from campaigns.dispatch.dispatcher import DispatchConfig, Dispatcher
from storage.db import Database
from storage.enums import MessagePurpose
from storage.tables import Campaign

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
DUE = NOW - timedelta(minutes=1)  # every due row due at the same moment, as after a campaign's launch
ROWS = 20_000
CLAIM_INDEX = {
    MessagePurpose.INVITATION: "ix_invitations_state_due_at_id",
    MessagePurpose.REMINDER: "ix_invitations_claim_reminder_due",
}
# The due rows of each purpose, and as many rows of past surveys, long settled, around them.
DUE_ROW = {
    MessagePurpose.INVITATION: "'planned', :due, NULL",
    MessagePurpose.REMINDER: "'sent', :due - interval '1 day', :due",
}
SETTLED_ROW = "'responded', :due - interval '30 days', NULL"


@contextmanager
def captured_claim(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The claim UPDATE as the dispatcher hands it to the driver: its SQL text and its parameters."""
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE INVITATIONS"):
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)


def claim_statement(db: Database, purpose: MessagePurpose) -> tuple[str, Any]:
    dispatcher = Dispatcher(db, {}, clock=ManualClock(NOW), config=DispatchConfig(), worker_id="plan-test")
    try:
        with captured_claim(db) as seen:
            claimed = dispatcher._claim(purpose)
    finally:
        dispatcher.close()
    assert len(claimed) == DispatchConfig().batch_size  # the statement found due rows: the fill is right
    assert len(seen) == 1
    return seen[0]


def add_campaign(db: Database) -> int:
    with db.transaction() as session:
        return session.execute(
            insert(Campaign).values(name="launch", kind="relationship").returning(Campaign.id)
        ).scalar_one()


def fill_postgres(db: Database, purpose: MessagePurpose) -> None:
    """ROWS due rows of `purpose` plus ROWS settled ones, written by the database itself, then ANALYZEd."""
    campaign_id = add_campaign(db)
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO contacts (external_id, properties, test, created_at, updated_at)"
                " SELECT 'c' || g, '{}', false, :due, :due FROM generate_series(1, :rows) AS g"
            ),
            {"due": DUE, "rows": ROWS},
        )
        for number, columns in ((0, DUE_ROW[purpose]), (1, SETTLED_ROW)):
            connection.execute(
                text(
                    "INSERT INTO invitations (contact_id, campaign_id, state, due_at, reminder_due_at, attempts,"
                    " token, created_at, updated_at)"
                    f" SELECT g, :campaign, {columns}, 0, 't{number}-' || g, :due, :due"
                    " FROM generate_series(1, :rows) AS g"
                ),
                {"due": DUE, "rows": ROWS, "campaign": campaign_id},
            )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE contacts, campaigns, invitations"))


def postgres_plan(db: Database, statement: str, parameters: Any) -> dict[str, Any]:
    with db.engine.connect() as connection:
        raw = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar_one()
    document = raw if isinstance(raw, list) else json.loads(raw)
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def outline(plan: dict[str, Any], depth: int = 0) -> Iterator[str]:
    """The plan's nodes, one a line, indented: what an assertion's message shows."""
    yield "  " * depth + " ".join(
        str(plan.get(key, "")) for key in ("Node Type", "Relation Name", "Index Name")
    )
    for child in plan.get("Plans", []):
        yield from outline(child, depth + 1)


@pytest.mark.postgres
@pytest.mark.parametrize("purpose", [MessagePurpose.INVITATION, MessagePurpose.REMINDER])
def test_postgres_claims_from_the_claim_index_without_sorting(
    empty_postgres_db: Database, purpose: MessagePurpose
) -> None:
    fill_postgres(empty_postgres_db, purpose)
    plan = postgres_plan(empty_postgres_db, *claim_statement(empty_postgres_db, purpose))
    found = list(nodes(plan))
    described = "\n".join(outline(plan))
    on_invitations = [n for n in found if n.get("Relation Name") == "invitations" and "Index Name" in n]
    assert CLAIM_INDEX[purpose] in {n["Index Name"] for n in on_invitations}, described
    assert not [n for n in found if "Sort" in n["Node Type"]], described  # "Sort" and "Incremental Sort"


def fill_sqlite(db: Database, purpose: MessagePurpose) -> None:
    """A smaller fill: SQLite plans by the schema, not by statistics, so a few rows show the same plan."""
    campaign_id = add_campaign(db)
    due = DUE.replace(tzinfo=None)
    sent = DUE_ROW[purpose].startswith("'sent'")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO contacts (external_id, properties, test, created_at, updated_at)"
                " VALUES ('c' || :n, '{}', 0, :due, :due)"
            ),
            [{"n": n, "due": due} for n in range(1, 501)],
        )
        connection.execute(
            text(
                "INSERT INTO invitations (contact_id, campaign_id, state, due_at, reminder_due_at, attempts,"
                " token, created_at, updated_at)"
                " VALUES (:n, :campaign, :state, :due, :reminder, 0, 't-' || :n, :due, :due)"
            ),
            [
                {
                    "n": n,
                    "campaign": campaign_id,
                    "state": "sent" if sent else "planned",
                    "due": due,
                    "reminder": due if sent else None,
                }
                for n in range(1, 501)
            ],
        )
        connection.execute(text("ANALYZE"))


@pytest.mark.parametrize("purpose", [MessagePurpose.INVITATION, MessagePurpose.REMINDER])
def test_sqlite_claims_from_the_claim_index_without_sorting(
    sqlite_db: Database, purpose: MessagePurpose
) -> None:
    fill_sqlite(sqlite_db, purpose)
    statement, parameters = claim_statement(sqlite_db, purpose)
    with sqlite_db.engine.connect() as connection:
        steps = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert any(f"USING INDEX {CLAIM_INDEX[purpose]}" in step for step in steps), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps
