"""Recurring (relationship) campaigns: spread over the interval, audience, sampling, daily target, fatigue."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.planning.planner import PlanStats
from service.container import Container
from storage.db import Database
from storage.enums import InvitationState, SkipReason
from storage.tables import Campaign, Contact, Invitation, Skip
from tests.fixtures.databases import wait_while_it_runs_until_it_waits_on_a_lock
from tests.fixtures.engine import add_contacts, apply_yaml, count_invitations, plan
from tests.standins.fake_twilio import FakeTwilio

ALWAYS_OPEN = 'send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}'


def pulse(**fields: object) -> str:
    extra = "".join(f"\n    {key}: {value}" for key, value in fields.items())
    return f"""
campaigns:
  - name: pulse
    kind: relationship
    channels: [sms, email]
    {ALWAYS_OPEN}{extra}
"""


def people(n: int, **properties: str) -> list[dict[str, object]]:
    return [
        {"external_id": f"c{i}", "phone": f"+4915112{i:06d}", "properties": dict(properties)}
        for i in range(n)
    ]


def planned_per_contact(engine: Container) -> Counter[int]:
    with engine.db.transaction() as session:
        return Counter(session.scalars(select(Invitation.contact_id)))


def test_a_thousand_contacts_are_spread_evenly_over_the_interval(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, people(1000))
    apply_yaml(engine, pulse(interval_days=90))
    per_day = []
    for _ in range(90):
        per_day.append(plan(engine).planned)
        dispatcher.drain()
        engine.clock.advance(days=1)  # type: ignore[attr-defined]

    assert sum(per_day) == 1000
    assert set(planned_per_contact(engine).values()) == {1}  # each contact exactly once per interval
    mean = 1000 / 90
    assert max(per_day) <= 2.5 * mean, per_day  # daily batches, not one blast
    assert sum(1 for n in per_day if n == 0) <= 5

    assert len(fake_twilio.messages()) == 1000
    assert len({m.to for m in fake_twilio.messages()}) == 1000

    # The next interval starts over: each contact's second survey is 90 days after its first.
    for _ in range(90):
        plan(engine)
        dispatcher.drain()
        engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert set(planned_per_contact(engine).values()) == {2}


def test_first_survey_waits_first_after_days_after_the_contact_was_created(engine: Container) -> None:
    add_contacts(engine, people(50))
    apply_yaml(engine, pulse(interval_days=10, first_after_days=30))
    for _ in range(29):
        assert plan(engine).planned == 0
        engine.clock.advance(days=1)  # type: ignore[attr-defined]
    engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert plan(engine).planned == 50


def test_audience_filters_on_properties(engine: Container) -> None:
    add_contacts(
        engine,
        [
            {"external_id": "a", "phone": "+4915112000001", "properties": {"plan": "pro", "region": "EU"}},
            {
                "external_id": "b",
                "phone": "+4915112000002",
                "properties": {"plan": "Enterprise", "region": "EU"},
            },
            {"external_id": "c", "phone": "+4915112000003", "properties": {"plan": "free", "region": "EU"}},
            {"external_id": "d", "phone": "+4915112000004", "properties": {"plan": "pro", "region": "US"}},
            {"external_id": "e", "phone": "+4915112000005", "properties": {"plan": "pro"}},
        ],
    )
    apply_yaml(engine, pulse(interval_days=1, audience="{plan: [pro, enterprise], region: EU}"))
    plan(engine)
    with engine.db.transaction() as session:
        planned = set(
            session.scalars(select(Contact.external_id).join(Invitation, Invitation.contact_id == Contact.id))
        )
    assert planned == {"a", "b"}


def test_sampling_surveys_about_the_rate_and_records_the_rest_as_skipped(engine: Container) -> None:
    add_contacts(engine, people(400))
    apply_yaml(engine, pulse(interval_days=1, sample_rate=0.25))
    stats = plan(engine)
    assert 60 <= stats.planned <= 140
    assert stats.planned + stats.skipped_by_reason["not_sampled"] == 400
    assert count_invitations(engine, Invitation.state == InvitationState.PLANNED) == stats.planned
    with engine.db.transaction() as session:
        reasons = Counter(session.scalars(select(Skip.reason)))
    assert reasons == {"not_sampled": 400 - stats.planned}
    # A contact not drawn is not redrawn at every tick of the same cycle.
    assert plan(engine).planned == 0


def test_daily_target_caps_each_day(engine: Container) -> None:
    add_contacts(engine, people(30))
    apply_yaml(engine, pulse(interval_days=1, daily_target=12))
    assert plan(engine).planned == 12
    assert plan(engine).planned == 0  # same day
    engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert plan(engine).planned == 12
    engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert plan(engine).planned == 6


def test_global_fatigue_rule_across_campaigns(engine: Container) -> None:
    add_contacts(engine, people(3))
    apply_yaml(engine, pulse(interval_days=1))
    plan(engine)
    with engine.db.transaction() as session:
        for invitation in session.scalars(select(Invitation)):
            invitation.state, invitation.sent_at = InvitationState.SENT, engine.clock.now()
    engine.clock.advance(days=30)  # type: ignore[attr-defined]
    apply_yaml(engine, pulse(interval_days=1).replace("name: pulse", "name: other"))
    stats = plan(engine)
    assert stats.planned == 0
    assert stats.skipped_by_reason == {"fatigue": 6}  # both campaigns, 3 contacts each
    with engine.db.transaction() as session:
        detail = session.scalars(select(Skip.detail)).first()
    assert detail is not None and "at most one survey per 90 days" in detail
    engine.clock.advance(days=61)  # type: ignore[attr-defined]
    assert plan(engine).planned == 3  # one campaign wins; the other finds a survey already queued


def test_opted_out_contacts_are_never_planned(engine: Container) -> None:
    add_contacts(engine, people(2))
    with engine.db.transaction() as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == "c0")).one()
        contact.opted_out_at = engine.clock.now() - timedelta(days=1)
    apply_yaml(engine, pulse(interval_days=1))
    stats = plan(engine)
    assert stats.planned == 1
    assert stats.skipped_by_reason == {"opted_out": 1}


def test_a_paused_campaign_is_not_planned(engine: Container) -> None:
    from campaigns.definitions.store import set_status
    from storage.enums import CampaignStatus

    add_contacts(engine, people(2))
    apply_yaml(engine, pulse(interval_days=1))
    with engine.db.transaction() as session:
        set_status("pulse", CampaignStatus.PAUSED, session=session)
    assert plan(engine).planned == 0


# --- at most one pending invitation per contact (issue 10, case 1) ----------------------------------------


def pending_invitations(engine: Container) -> list[int]:
    with engine.db.transaction() as session:
        return list(
            session.scalars(
                select(Invitation.contact_id).where(
                    Invitation.state.in_((InvitationState.PLANNED, InvitationState.CLAIMED))
                )
            )
        )


# PostgreSQL only: two sessions writing at once: SQLite has one writer at a time
@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_contact_planned_by_another_session_at_the_same_moment_is_planned_once(
    engine: Container, db: Database
) -> None:
    add_contacts(engine, people(1))
    apply_yaml(engine, pulse(interval_days=1))
    now = engine.clock.now()
    with engine.db.transaction() as session:
        contact_id = session.scalars(select(Contact.id)).one()
        campaign_id = session.scalars(select(Campaign.id)).one()
    # An event for the same contact (POST /api/v1/events) inserted its invitation and has not committed yet.
    other = engine.db.sessions()
    other.begin()
    other.add(
        Invitation(
            campaign_id=campaign_id,
            contact_id=contact_id,
            state=InvitationState.PLANNED,
            due_at=now,
            token="the-event-one",
            dedupe_key="from-an-event",
            created_at=now,
            updated_at=now,
        )
    )
    other.flush()
    planned: list[PlanStats] = []
    planner = threading.Thread(target=lambda: planned.append(plan(engine)))
    planner.start()
    try:
        wait_while_it_runs_until_it_waits_on_a_lock(engine.db, planner)
        other.commit()
    finally:
        other.close()
        planner.join(timeout=10)
    assert pending_invitations(engine) == [contact_id]
    assert planned[0].planned == 0
    assert planned[0].skipped_by_reason == {SkipReason.PENDING: 1}


def test_first_after_days_counts_from_customer_since_when_given(engine: Container) -> None:
    now = engine.clock.now()
    add_contacts(
        engine,
        [
            {
                "external_id": "old",
                "phone": "+4915112000001",
                "customer_since": (now - timedelta(days=400)).isoformat(),
            },
            {"external_id": "new", "phone": "+4915112000002"},
        ],
    )
    apply_yaml(engine, pulse(interval_days=1, first_after_days=30))
    assert plan(engine).planned == 1
    with engine.db.transaction() as session:
        planned = set(
            session.scalars(select(Contact.external_id).join(Invitation, Invitation.contact_id == Contact.id))
        )
    assert planned == {"old"}


def test_fatigue_counts_from_last_surveyed_at_given_on_import(engine: Container) -> None:
    now = engine.clock.now()
    add_contacts(
        engine,
        [
            {
                "external_id": "recent",
                "phone": "+4915112000001",
                "last_surveyed_at": (now - timedelta(days=10)).isoformat(),
            },
            {
                "external_id": "long-ago",
                "phone": "+4915112000002",
                "last_surveyed_at": (now - timedelta(days=200)).isoformat(),
            },
        ],
    )
    apply_yaml(engine, pulse(interval_days=1))
    stats = plan(engine)
    assert stats.planned == 1
    assert stats.skipped_by_reason == {"fatigue": 1}
    with engine.db.transaction() as session:
        (detail,) = session.scalars(select(Skip.detail))
    assert f"next possible {now + timedelta(days=80):%Y-%m-%d}" in detail
