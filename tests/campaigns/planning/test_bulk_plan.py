"""On PostgreSQL a range's INSERT ... SELECT probes the outbox and the consents per contact, by index.

A freshly installed outbox is empty and its statistics say so: PostgreSQL then read the invitations and the
consents sequentially once per contact of the range (an anti-join with a nested loop, or a subplan over a
sequential scan), while the same statement inserted into them. That grew with every row written and made
planning a large base quadratic. The test replays the statements of one range as the planner sent them (its
settings for the transaction included), asks for the INSERT's plan, and requires no sequential scan and no JIT.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg import sql
from sqlalchemy import Connection, event, text

from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.store import apply_definitions
from campaigns.planning import bulk
from campaigns.planning.planner import PlanningRules, plan_recurring
from storage.db import Database
from tests.campaigns.dispatch.test_claim_plan import nodes, outline

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONTACTS = 20_000
CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 90
    channels: [sms]
    audience: {plan: [pro]}
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""


def fill(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO contacts (external_id, phone, properties, test, created_at, updated_at)"
                " SELECT 'c' || g, '+4915130' || lpad(g::text, 6, '0'), '{\"plan\": \"pro\"}', false, :at, :at"
                " FROM generate_series(1, :rows) AS g"
            ),
            {"at": NOW - timedelta(days=400), "rows": CONTACTS},
        )
        connection.execute(
            text(
                "INSERT INTO consents (channel, address, status, source, changed_at)"
                " SELECT 'sms', '+4915130' || lpad(g::text, 6, '0'), 'opted_out', 'test', :at"
                " FROM generate_series(1, :rows, 50) AS g"
            ),
            {"at": NOW - timedelta(days=5), "rows": CONTACTS},
        )
    with db.transaction() as session:
        apply_definitions(
            parse_campaign_file(CAMPAIGN).campaigns, session=session, now=NOW - timedelta(days=100)
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


@pytest.mark.postgres
def test_postgres_probes_a_range_per_contact_by_index(
    empty_postgres_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "RANGE", CONTACTS)  # one range: its statements are the whole run
    monkeypatch.setattr(bulk, "POSTGRESQL_RANGE", CONTACTS)
    fill(empty_postgres_db)
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(empty_postgres_db.engine, "before_cursor_execute", keep)
    try:
        stats = plan_recurring(empty_postgres_db, now=NOW, rules=PlanningRules(), force=True)
    finally:
        event.remove(empty_postgres_db.engine, "before_cursor_execute", keep)
    assert stats.planned == CONTACTS - CONTACTS // 50, stats  # the fill is right

    insert_at = next(i for i, (s, _) in enumerate(seen) if "INSERT INTO invitations" in s)
    settings = [(s, p) for s, p in seen[:insert_at] if s.lstrip().upper().startswith("SET ")]
    with empty_postgres_db.engine.connect() as connection:
        for statement, parameters in settings:
            connection.exec_driver_sql(statement, parameters)
        raw = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + seen[insert_at][0], seen[insert_at][1])
        document = raw.scalar_one()
        jit = connection.exec_driver_sql("SHOW jit").scalar_one()
        connection.rollback()
    plan = document[0]["Plan"]
    described = "\n".join(outline(plan))
    scans = [n for n in nodes(plan) if n["Node Type"] == "Seq Scan"]
    assert scans == [], described
    assert jit == "off"


@pytest.mark.postgres
def test_postgres_plans_each_range_for_its_own_bounds(
    empty_postgres_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL may run a statement it has seen many times with one generic plan for every parameter: were the
    range bounds parameters, that plan would not know the range, and at 1,000,000 contacts the leftovers' read
    took 4-6 s a range from the eighteenth range on, where the range's own plan takes 0.05 s. A server (or a
    managed database's default) set to generic plans does not change that: the test plans under
    `plan_cache_mode = force_generic_plan`, then prepares the last range's statements as sent and asks for their
    generic plans (within the range transaction's settings): each reads the contacts of its range by their ids."""
    monkeypatch.setattr(bulk, "RANGE", 2_000)  # ten ranges
    monkeypatch.setattr(bulk, "POSTGRESQL_RANGE", 2_000)
    fill(empty_postgres_db)
    db = Database.connect(empty_postgres_db.engine.url.render_as_string(hide_password=False))

    @event.listens_for(db.engine, "connect")
    def generic_plans_by_default(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")
        dbapi_connection.commit()

    seen: list[tuple[str, Any]] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def keep(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    try:
        stats = plan_recurring(db, now=NOW, rules=PlanningRules(), force=True)
        settings = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SET ")]
        ranged = [(s, p) for s, p in seen if "contacts.id BETWEEN" in s and "invitations" in s]
        with db.engine.connect() as connection:
            connection.exec_driver_sql(*settings[-1])
            plans = [_generic_plan(connection, *sent) for sent in ranged[-2:]]
            connection.rollback()
    finally:
        db.dispose()
    assert stats.planned == CONTACTS - CONTACTS // 50, stats
    assert len(ranged) == 20, [s[:60] for s, _ in ranged]  # the leftovers' read and the insert of each range
    last_low = str(CONTACTS - 2_000 + 1)
    for plan in plans:
        reads = [n["Index Cond"] for n in nodes(plan) if n.get("Index Name") == "pk_contacts"]
        assert reads, "\n".join(outline(plan))
        assert all(last_low in condition for condition in reads), reads  # not "$1"


def _generic_plan(connection: Connection, statement: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The plan PostgreSQL makes for `statement` prepared, at the session's `plan_cache_mode`."""
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", statement)))
    numbered = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", statement)
    connection.exec_driver_sql("PREPARE range_statement AS " + numbered.replace("%%", "%"))
    raw = connection.connection.driver_connection
    arguments = ", ".join(sql.Literal(parameters[name]).as_string(raw) for name in names)
    explained = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) EXECUTE range_statement({arguments})")
    plan: dict[str, Any] = explained.scalar_one()[0]["Plan"]
    connection.exec_driver_sql("DEALLOCATE range_statement")
    return plan
