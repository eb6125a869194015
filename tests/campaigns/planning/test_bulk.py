"""The set-based planner writes the same invitations and skips as the contact-by-contact one."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select

from campaigns.planning import bulk, planner
from campaigns.planning.planner import PlanStats, plan_recurring
from service.container import Container
from storage.enums import Channel, ConsentStatus, InvitationState
from storage.tables import Campaign, Consent, Contact, Invitation, Skip
from tests.fixtures.engine import add_contacts, apply_yaml

CAMPAIGNS = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 30
    first_after_days: 10
    channels: [sms, email]
    audience: {plan: [pro, enterprise], region: EU, created_at: {after: 2026-01-01}}
    send_window: {days: [mon, tue, wed, thu], start: "09:00", end: "12:00"}
  - name: other
    kind: relationship
    interval_days: 90
    channels: [email]
    audience: {plan: nobody}
"""

PLANS = ["pro", "Enterprise", " pro ", "free", None]
REGIONS = ["EU", "eu", "US", None]
ZONES = [None, "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata", "Australia/Lord_Howe"]


def seed(engine: Container) -> None:
    """A mixed base: audience hits and misses, imported history, opt-outs, fatigue, queued and past surveys."""
    clock: Any = engine.clock
    start = clock.now()
    rows: list[dict[str, object]] = []
    for i in range(240):
        properties: dict[str, object] = {}
        if PLANS[i % 5] is not None:
            properties["plan"] = PLANS[i % 5]
        if REGIONS[i % 4] is not None:
            properties["region"] = REGIONS[i % 4]
        row: dict[str, object] = {
            "external_id": f"c{i}",
            "phone": f"+4915112{i:06d}" if i % 9 else None,
            "email": f"c{i}@example.com" if i % 2 else None,
            "properties": properties,
            "timezone": ZONES[i % 5],
        }
        if i % 3 == 0:
            row["customer_since"] = (start - timedelta(days=i)).isoformat()
        if i % 7 == 0:
            row["last_surveyed_at"] = (start - timedelta(days=60 + i % 50)).isoformat()
        rows.append(row)
    for part in range(4):  # added on different days
        add_contacts(engine, rows[part * 60 : (part + 1) * 60])
        clock.advance(days=3)
    apply_yaml(engine, CAMPAIGNS)
    clock.advance(days=12)
    now = clock.now()
    with engine.db.transaction() as session:
        contacts = {c.external_id: c for c in session.scalars(select(Contact))}
        pulse = session.scalars(select(Campaign).where(Campaign.name == "pulse")).one()
        other = session.scalars(select(Campaign).where(Campaign.name == "other")).one()
        for i in range(0, 240, 11):
            contacts[f"c{i}"].opted_out_at = now - timedelta(days=1)
        for i in range(1, 240, 13):
            phone = contacts[f"c{i}"].phone
            if phone:
                session.add(
                    Consent(channel=Channel.SMS, address=phone, status=ConsentStatus.OPTED_OUT, source="test")
                )
        contacts["c5"].timezone = "Mars/Olympus"  # a zone that stopped resolving
        contacts["c10"].properties = {"Plan": "pro", "region": "EU"}  # the key in another case
        contacts["c20"].properties = {"plan": "PRO", "region": "EU"}

        def invitation(contact: Contact, campaign: Campaign, state: InvitationState, **fields: Any) -> None:
            session.add(
                Invitation(
                    contact_id=contact.id,
                    campaign_id=campaign.id,
                    state=state,
                    due_at=fields.pop("due_at", now - timedelta(days=40)),
                    token=f"t-{campaign.id}-{contact.id}-{state.value}",
                    dedupe_key=f"seed-{campaign.id}-{contact.id}-{state.value}",
                    created_at=now - timedelta(days=40),
                    updated_at=fields.pop("updated_at", now - timedelta(days=40)),
                    **fields,
                )
            )

        for i in range(2, 240, 17):  # queued by another campaign
            invitation(contacts[f"c{i}"], other, InvitationState.PLANNED, due_at=now + timedelta(days=1))
        for i in range(3, 240, 19):  # answered elsewhere recently: fatigue
            invitation(
                contacts[f"c{i}"], other, InvitationState.RESPONDED, sent_at=now - timedelta(days=20 + i % 80)
            )
        for i in range(4, 240, 23):  # held for review: counts as sent when it went to review
            invitation(
                contacts[f"c{i}"], other, InvitationState.REVIEW, updated_at=now - timedelta(days=i % 120)
            )
        for i in range(6, 240, 8):  # this campaign's previous cycle, due 25 to 44 days ago
            invitation(
                contacts[f"c{i}"],
                pulse,
                InvitationState.EXPIRED,
                due_at=now - timedelta(days=25 + i % 20),
                sent_at=now - timedelta(days=25 + i % 20),
            )


def snapshot(engine: Container) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    with engine.db.transaction() as session:
        invitations = {
            (
                i.campaign_id,
                i.contact_id,
                i.state,
                i.due_at,
                i.dedupe_key,
                i.event_id,
                i.attempts,
                i.channel,
                len(i.token),
            )
            for i in session.scalars(select(Invitation))
        }
        skips = {
            (s.campaign_id, s.contact_id, s.reason, s.detail, s.count) for s in session.scalars(select(Skip))
        }
    return invitations, skips


def run(engine: Container, *, set_based: bool) -> PlanStats:
    return plan_recurring(
        engine.db, now=engine.clock.now(), rules=engine.planning_rules, force=True, set_based=set_based
    )


def test_both_planners_write_the_same_invitations_and_skips(
    engine: Container, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bulk, "RANGE", 25)  # many ranges, one of them with an odd property
    monkeypatch.setattr(bulk, "POSTGRESQL_RANGE", 25)
    seed(engine)
    with engine.db.transaction() as session:
        last_seeded = session.scalar(select(func.max(Invitation.id)))

    by_contact = run(engine, set_based=False)
    expected = snapshot(engine)
    with engine.db.transaction() as session:
        session.execute(delete(Invitation).where(Invitation.id > last_seeded))
        session.execute(delete(Skip))
    with caplog.at_level(logging.INFO, logger="campaigns.planning.planner"):
        set_based = run(engine, set_based=True)

    assert snapshot(engine) == expected
    assert set_based == by_contact
    assert by_contact.planned >= 15 and by_contact.skipped >= 8, by_contact
    assert set(by_contact.skipped_by_reason) >= {"opted_out", "fatigue", "no_channel"}
    # The range holding "Plan" went contact by contact, and the log says so.
    assert "planned 1 of 10 contact ranges of pulse contact by contact" in caplog.text


def test_what_sql_cannot_express_falls_back_and_says_so(
    engine: Container, caplog: pytest.LogCaptureFixture
) -> None:
    add_contacts(engine, [{"external_id": "a", "phone": "+4915112000001"}])
    apply_yaml(engine, CAMPAIGNS.replace("first_after_days: 10", "first_after_days: 0\n    sample_rate: 0.5"))
    with caplog.at_level(logging.INFO, logger="campaigns.planning.planner"):
        run(engine, set_based=True)
    assert "planning pulse contact by contact: it samples" in caplog.text


ODD_VALUES: list[dict[str, object]] = [
    {"plan": "enterpri\u017fe", "region": "EU"},  # casefolds to "enterprise"; SQL's lower() does not
    {"plan": "pro\n", "region": "EU"},  # Python strips the newline; SQL's trim() does not
    {"plan": "pro", "region": 7},  # not text
    {"plan": "pro", "Region": "EU"},  # the key in another case
    {"plan": "pro", "region": "EU", "n\u00f6te": "x"},  # another key not plain ASCII
]


@pytest.mark.parametrize("odd", ODD_VALUES, ids=["long-s", "newline", "number", "key-case", "other-key"])
def test_a_range_with_an_odd_property_is_planned_as_python_compares(
    engine: Container, odd: dict[str, object]
) -> None:
    rows = [{"external_id": f"c{i}", "phone": f"+4915112{i:06d}"} for i in range(6)]
    add_contacts(engine, rows)
    with engine.db.transaction() as session:
        for contact in session.scalars(select(Contact)):
            contact.properties = {"plan": "pro", "region": "EU"} if contact.external_id != "c3" else odd
    apply_yaml(engine, CAMPAIGNS.replace("first_after_days: 10", "first_after_days: 0"))
    engine.clock.advance(days=31)

    by_contact = run(engine, set_based=False)
    expected = snapshot(engine)
    with engine.db.transaction() as session:
        session.execute(delete(Invitation))
        session.execute(delete(Skip))
    set_based = run(engine, set_based=True)

    assert snapshot(engine) == expected
    assert set_based == by_contact
    assert by_contact.planned >= 5, by_contact


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # the query plan SQLite picks without statistics
def test_no_planning_statement_walks_the_queued_surveys(engine: Container) -> None:
    """Planning a range looks invitations up by contact or campaign, never by state: the outbox's queued
    surveys grow with every range planned, and walking them once per range made a large base quadratic."""
    seed(engine)
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if "invitations" in statement and not many:
            statements.append((statement, params))

    event.listen(engine.db.engine, "before_cursor_execute", seen)
    try:
        run(engine, set_based=True)
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", seen)

    raw = engine.db.engine.raw_connection()
    try:
        sqlite_connection: Any = raw.driver_connection
        sqlite_connection.create_function("nps_token", 0, lambda: "")
        sqlite_connection.create_function("nps_phase_days", 3, lambda *_: 0)
        walks = [
            (statement.split()[0:6], detail)
            for statement, params in statements
            for *_, detail in sqlite_connection.execute("EXPLAIN QUERY PLAN " + statement, params)
            if "INDEX ix_invitations_state_" in detail
        ]
    finally:
        raw.close()
    assert statements
    assert walks == []


def test_a_range_decides_its_skips_from_its_own_read(
    engine: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per range: the leftovers' read, the zones, the insert and one executemany of the skips. The facts of the
    skipped come with the leftovers' read: no second read of the range's contacts, invitations or consents."""
    monkeypatch.setattr(bulk, "RANGE", 25)
    monkeypatch.setattr(bulk, "POSTGRESQL_RANGE", 25)
    seed(engine)
    with engine.db.transaction() as session:
        session.execute(delete(Consent))  # no range goes contact by contact for an odd property either
        for contact in session.scalars(select(Contact)):
            if contact.properties.get("Plan"):
                contact.properties = {"plan": "pro", "region": "EU"}
    with engine.db.transaction() as session:
        ranges = len(bulk.id_ranges(session))
    statements: list[tuple[str, bool]] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        statements.append((statement, many))

    event.listen(engine.db.engine, "before_cursor_execute", seen)
    try:
        stats = run(engine, set_based=True)
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", seen)

    assert stats.skipped >= 8, stats
    reads = [s for s, _ in statements if s.lstrip().upper().startswith("SELECT")]
    fact_reads = [s for s in reads if "consents" in s or "contacts.phone" in s]
    skip_writes = [s for s, _ in statements if "INSERT INTO skips" in s]
    # one read of the leftovers with their facts per range and campaign, nothing else reads phones or consents
    assert len(fact_reads) <= 2 * ranges, "\n".join(fact_reads)
    assert len(skip_writes) <= 2 * ranges


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_sqlite_ranges_defer_checkpoints_and_restore_the_default(
    engine: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each range's commit would copy the log into the database once it holds 1,000 pages; the ranges run
    with a larger threshold, and the connection gets SQLite's default back when the pass ends."""
    monkeypatch.setattr(bulk, "RANGE", 25)
    monkeypatch.setattr(bulk, "POSTGRESQL_RANGE", 25)
    seed(engine)
    thresholds: list[int] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().startswith("INSERT INTO invitations"):
            thresholds.append(cursor.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    event.listen(engine.db.engine, "before_cursor_execute", seen)
    try:
        run(engine, set_based=True)
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", seen)
    assert thresholds and set(thresholds) == {planner.PLANNING_CHECKPOINT_PAGES}
    with engine.db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
