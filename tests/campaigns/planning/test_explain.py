"""`nps contacts why`: per campaign, the next survey's date and the rule that sets it, as the planner decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from campaigns.planning.explain import explain
from service.container import Container
from storage.tables import Contact, Invitation
from tests.fixtures.engine import add_contacts, apply_yaml, plan

WINDOW = 'send_window: {days: [mon, tue, wed, thu], start: "09:00", end: "12:00"}'


def campaign(name: str = "pulse", **fields: object) -> str:
    extra = "".join(f"\n    {key}: {value}" for key, value in fields.items())
    return f"""
campaigns:
  - name: {name}
    kind: relationship
    channels: [sms, email]
    {WINDOW}{extra}
"""


def why(engine: Container, external_id: str) -> list[str]:
    with engine.db.transaction() as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == external_id)).one()
        return explain(contact, now=engine.clock.now(), rules=engine.planning_rules, session=session)


def line_for(lines: list[str], campaign_name: str) -> str:
    (line,) = [
        line for line in lines if line.startswith(f"{campaign_name}: ") and "invitation" not in line[:40]
    ]
    return line


def test_a_new_import_waits_first_after_days_from_the_moment_it_was_added(engine: Container) -> None:
    add_contacts(engine, [{"external_id": "ana", "phone": "+4915112000001"}])
    apply_yaml(engine, campaign(interval_days=90, first_after_days=30))
    lines = why(engine, "ana")
    assert "customer since 2026-11-23 (when the contact was added; no customer_since)" in lines
    line = line_for(lines, "pulse")
    # 30 days after Monday 2026-11-23 10:00 is Wednesday 2026-12-23 10:00, inside the window.
    assert line.startswith(
        "pulse: next survey 2026-12-23 10:00 UTC: due 2026-12-23 10:00 UTC by first_after_days: 30"
    ), line
    assert "(2026-11-23, when the contact was added)" in line


def test_customer_since_moves_the_first_survey_to_the_spread_over_the_interval(engine: Container) -> None:
    since = engine.clock.now() - timedelta(days=400)
    add_contacts(
        engine, [{"external_id": "ana", "phone": "+4915112000001", "customer_since": since.isoformat()}]
    )
    apply_yaml(engine, campaign(interval_days=90, first_after_days=30))
    lines = why(engine, "ana")
    assert "customer since 2025-10-19 (customer_since)" in lines
    line = line_for(lines, "pulse")
    assert "by the first survey's day in the 90-day interval" in line, line
    assert "first_after_days: 30 after 2025-10-19, customer_since" in line


def test_fatigue_from_an_imported_last_survey_holds_the_next_one_back_until_a_date(engine: Container) -> None:
    last = engine.clock.now() - timedelta(days=10)
    add_contacts(
        engine, [{"external_id": "ana", "phone": "+4915112000001", "last_surveyed_at": last.isoformat()}]
    )
    apply_yaml(engine, campaign(interval_days=1))
    lines = why(engine, "ana")
    assert "last surveyed 2026-11-13 10:00 UTC (last_surveyed_at, from another tool)" in lines
    line = line_for(lines, "pulse")
    # Fatigue ends on Thursday 2027-02-11 10:00 (90 days after the last survey), inside the window.
    assert line.startswith("pulse: next survey 2027-02-11 10:00 UTC"), line
    assert "held back by fatigue until 2027-02-11 10:00 UTC" in line


def test_the_send_window_of_the_contacts_zone_moves_the_survey(engine: Container) -> None:
    add_contacts(
        engine, [{"external_id": "ana", "phone": "+4915112000001", "timezone": "America/Los_Angeles"}]
    )
    apply_yaml(engine, campaign(interval_days=90, first_after_days=30))
    line = line_for(why(engine, "ana"), "pulse")
    # Due Wednesday 10:00 UTC = 02:00 in Los Angeles; the window opens at 09:00 there (17:00 UTC).
    assert line.startswith("pulse: next survey 2026-12-23 17:00 UTC: due 2026-12-23 10:00 UTC"), line
    assert "moved into the send window (Mon,Tue,Wed,Thu 09:00-12:00, America/Los_Angeles)" in line


def test_opted_out_not_in_the_audience_and_no_channel_say_so(engine: Container) -> None:
    add_contacts(
        engine,
        [
            {"external_id": "out", "phone": "+4915112000001", "properties": {"plan": "pro"}},
            {"external_id": "free", "phone": "+4915112000002", "properties": {"plan": "free"}},
        ],
    )
    with engine.db.transaction() as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == "out")).one()
        contact.opted_out_at = engine.clock.now()
    apply_yaml(engine, campaign(interval_days=1, audience="{plan: pro}"))
    assert line_for(why(engine, "out"), "pulse").startswith(
        "pulse: never: opted out of all surveys on 2026-11-23"
    )
    assert line_for(why(engine, "free"), "pulse") == "pulse: not in the audience (wants plan is pro)"


def test_an_already_pending_survey_is_named_with_its_due_time(engine: Container) -> None:
    add_contacts(engine, [{"external_id": "ana", "phone": "+4915112000001"}])
    apply_yaml(engine, campaign(interval_days=1) + campaign("other", interval_days=1).split("campaigns:")[1])
    assert plan(engine).planned == 1
    lines = why(engine, "ana")
    with engine.db.transaction() as session:
        invitation = session.scalars(select(Invitation)).one()
    assert any(f"already pending: invitation {invitation.id} of " in line for line in lines), lines


def test_what_why_calls_due_now_is_what_the_planner_plans(engine: Container) -> None:
    now = engine.clock.now()
    rows = []
    for i in range(60):
        row: dict[str, object] = {
            "external_id": f"c{i}",
            "phone": f"+4915112{i:06d}",
            "properties": {"plan": "pro" if i % 4 else "free"},
        }
        if i % 3 == 0:
            row["customer_since"] = (now - timedelta(days=i * 7)).isoformat()
        if i % 5 == 0:
            row["last_surveyed_at"] = (now - timedelta(days=i * 3)).isoformat()
        rows.append(row)
    add_contacts(engine, rows)
    apply_yaml(engine, campaign(interval_days=30, first_after_days=14, audience="{plan: pro}"))
    engine.clock.advance(days=20)  # type: ignore[attr-defined]
    said_due = {f"c{i}" for i in range(60) if "due now" in line_for(why(engine, f"c{i}"), "pulse")}
    plan(engine)
    with engine.db.transaction() as session:
        planned = set(
            session.scalars(select(Contact.external_id).join(Invitation, Invitation.contact_id == Contact.id))
        )
    assert said_due and planned == said_due


def test_legal_quiet_hours_say_which_rule_moved_a_text(engine: Container) -> None:
    engine.clock.set(datetime(2026, 11, 24, 1, 30, tzinfo=UTC))  # type: ignore[attr-defined]  # 20:30 in Miami
    add_contacts(engine, [{"external_id": "flo", "phone": "+13052345678"}])
    apply_yaml(
        engine,
        """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    timezone: America/New_York
    send_window: {days: every day, start: "07:00", end: "22:00"}
""",
    )
    line = line_for(why(engine, "flo"), "pulse")
    assert (
        "at 2026-11-24 14:00 UTC instead: moved into legal quiet hours: US-FL 08:00-20:00 America/New_York and America/Chicago, at most 3 texts in 24 h"
        in line
    )
