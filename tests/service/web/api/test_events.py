"""`POST /api/v1/events`: transactional triggers over HTTP, through to the SMS the customer receives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from service.web.app import create_app
from storage.db import Database
from storage.enums import CampaignStatus, InvitationState
from storage.tables import Campaign, Contact, Event, Invitation, Skip
from tests.fixtures.databases import wait_while_it_runs_until_it_waits_on_a_lock
from tests.fixtures.engine import apply_yaml, count_invitations
from tests.standins.fake_twilio import FakeTwilio

POST_DELIVERY = """
campaigns:
  - name: post-delivery
    kind: transactional
    event: order_delivered
    delay: 14d
    dedupe_days: 30
    min_days_between_surveys: 30
    channels: [sms, email]
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
    messages:
      en: {sms: "Hi {{ first_name }}, how was your delivery of {{ product }}? Reply 0-10."}
"""


@pytest.fixture
def api(engine: Container) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        yield client


def event(key: str | None = "evt-1", **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "event": "order_delivered",
        "contact": {"external_id": "crm-7", "name": "Ana Lima", "phone": "+4915112345678"},
        "properties": {"order": "A-1001"},
        "idempotency_key": key,
    }
    body["contact"] = {**body["contact"], "properties": {"product": "the blue kettle"}}  # type: ignore[dict-item]
    body.update(overrides)
    return body


def test_an_event_plans_a_survey_after_the_delay_and_sends_it_then(
    engine: Container, api: TestClient, auth: dict[str, str], dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    apply_yaml(engine, POST_DELIVERY)
    response = api.post("/api/v1/events", json=event(), headers=auth)
    assert response.status_code == 201
    body = response.json()
    [outcome] = body["campaigns"]
    assert outcome["campaign"] == "post-delivery" and outcome["outcome"] == "planned"
    assert outcome["due_at"].startswith((engine.clock.now() + timedelta(days=14)).date().isoformat())

    assert dispatcher.drain().sent == 0
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 1
    [sms] = fake_twilio.wait_for(1)
    assert (
        sms["Body"] == "Hi Ana, how was your delivery of the blue kettle? Reply 0-10.\nReply STOP to opt out."
    )


def test_the_same_idempotency_key_plans_once(
    engine: Container, api: TestClient, auth: dict[str, str]
) -> None:
    apply_yaml(engine, POST_DELIVERY)
    first = api.post("/api/v1/events", json=event(), headers=auth)
    again = api.post("/api/v1/events", json=event(), headers=auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["event_id"] == first.json()["event_id"]
    assert count_invitations(engine) == 1
    with engine.db.transaction() as session:
        assert len(session.scalars(select(Event)).all()) == 1


def test_a_second_event_inside_dedupe_days_is_skipped_with_a_reason(
    engine: Container, api: TestClient, auth: dict[str, str]
) -> None:
    apply_yaml(engine, POST_DELIVERY)
    api.post("/api/v1/events", json=event("a"), headers=auth)
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    second = api.post("/api/v1/events", json=event("b"), headers=auth).json()
    assert second["campaigns"][0]["outcome"] == "skipped"
    assert second["campaigns"][0]["reason"] == "dedupe"
    assert count_invitations(engine) == 1
    with engine.db.transaction() as session:
        assert session.scalars(select(Skip.reason)).all() == ["dedupe"]


def test_the_campaigns_own_fatigue_window_applies(
    engine: Container, api: TestClient, auth: dict[str, str], dispatcher: Dispatcher
) -> None:
    onboarding = POST_DELIVERY.replace("post-delivery", "onboarding").replace(
        "order_delivered", "onboarding_done"
    )
    apply_yaml(
        engine, POST_DELIVERY + onboarding.split("campaigns:", 1)[1].replace("delay: 14d", "delay: 0d")
    )
    api.post("/api/v1/events", json=event("a", event="onboarding_done"), headers=auth)
    assert dispatcher.drain().sent == 1  # surveyed today by another campaign

    def delivered_two_weeks_ago(key: str) -> dict[str, object]:
        return event(key, occurred_at=(engine.clock.now() - timedelta(days=14)).isoformat())

    engine.clock.advance(days=5)  # type: ignore[attr-defined]
    outcome = api.post("/api/v1/events", json=delivered_two_weeks_ago("b"), headers=auth).json()["campaigns"][
        0
    ]
    assert outcome["reason"] == "fatigue"
    assert "at most one survey per 30 days" in outcome["detail"]

    # 31 days later the campaign's own 30-day window allows it, though the global rule (90) would not.
    engine.clock.advance(days=26)  # type: ignore[attr-defined]
    outcome = api.post("/api/v1/events", json=delivered_two_weeks_ago("c"), headers=auth).json()["campaigns"][
        0
    ]
    assert outcome["outcome"] == "planned"


def test_an_event_for_an_unknown_trigger_stores_the_event_and_plans_nothing(
    engine: Container, api: TestClient, auth: dict[str, str]
) -> None:
    apply_yaml(engine, POST_DELIVERY)
    response = api.post("/api/v1/events", json=event(event="ticket_closed"), headers=auth)
    assert response.status_code == 201
    assert response.json()["campaigns"] == []
    assert count_invitations(engine) == 0


def test_an_event_no_campaign_listens_to_says_so_and_is_logged_once_per_name(
    engine: Container, api: TestClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    apply_yaml(engine, POST_DELIVERY)
    caplog.set_level("WARNING", logger="service.web.api.events")
    for key in ("a", "b"):
        body = api.post("/api/v1/events", json=event(key, event="ticket_closed"), headers=auth).json()
        assert body["warnings"] == [
            "no active campaign listens to the event 'ticket_closed' (campaigns listen to: order_delivered)"
        ]
    api.post("/api/v1/events", json=event("c", event="order_shipped"), headers=auth)
    logged = [r.getMessage() for r in caplog.records if r.name == "service.web.api.events"]
    assert [line.split(":")[0] for line in logged] == [
        "event 'ticket_closed' received",
        "event 'order_shipped' received",
    ]
    listened = api.post("/api/v1/events", json=event("d"), headers=auth).json()
    assert listened["warnings"] == [] and [c["campaign"] for c in listened["campaigns"]] == ["post-delivery"]


def test_an_event_whose_campaigns_are_paused_says_so(
    engine: Container, api: TestClient, auth: dict[str, str]
) -> None:
    apply_yaml(engine, POST_DELIVERY)
    with engine.db.transaction() as session:
        session.scalars(select(Campaign)).one().status = CampaignStatus.PAUSED
    body = api.post("/api/v1/events", json=event(), headers=auth).json()
    assert body["warnings"] == [
        "no active campaign listens to the event 'order_delivered' (paused: post-delivery)"
    ]


def test_events_need_an_api_key(api: TestClient) -> None:
    assert api.post("/api/v1/events", json=event()).status_code == 401


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"event": "Order Delivered!"}, ["body", "event"]),
        ({"occurred_at": "2026-11-23T10:00:00"}, ["body", "occurred_at"]),
        ({"contact": {"external_id": "x", "phone": "+1 555"}}, ["body", "contact", "phone"]),
        ({"contact": {"external_id": "new-one"}}, ["body", "contact", "phone"]),
        ({"surprise": 1}, ["body", "surprise"]),
    ],
)
def test_bad_events_get_422_naming_the_field(
    engine: Container, api: TestClient, auth: dict[str, str], body: dict[str, object], location: list[str]
) -> None:
    response = api.post("/api/v1/events", json=event(**body), headers=auth)
    assert response.status_code == 422
    assert location in [error["loc"] for error in response.json()["detail"]]
    assert count_invitations(engine) == 0


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"properties": {"note": "secret-" * 15_000}}, ["body", "properties"]),
        ({"properties": {f"k{i}": i for i in range(10_000)}}, ["body", "properties"]),
        (
            {"contact": {"external_id": "crm-7", "properties": {"k" * 65: "v"}}},
            ["body", "contact", "properties"],
        ),
        (
            {"contact": {"external_id": "x" * 256, "phone": "+4915112345678"}},
            ["body", "contact", "external_id"],
        ),
    ],
    ids=["100 KB value", "10,000 keys", "contact property name", "external_id"],
)
def test_oversized_events_get_a_short_422_and_store_nothing(
    engine: Container, api: TestClient, auth: dict[str, str], body: dict[str, object], location: list[str]
) -> None:
    response = api.post("/api/v1/events", json=event(**body), headers=auth)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [location]
    assert "secret" not in response.text and len(response.content) < 500
    with engine.db.transaction() as session:
        assert session.scalars(select(Event)).all() == []
        assert session.scalars(select(Contact)).all() == []


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00+05:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-05:00",
    ],
)
def test_an_occurred_at_far_outside_our_time_is_a_422_not_a_500(
    engine: Container, api: TestClient, auth: dict[str, str], occurred_at: str
) -> None:
    """Issue 11 case 5: year 1 or 9999 overflowed the planner's date arithmetic (a 500)."""
    apply_yaml(engine, POST_DELIVERY)
    response = api.post("/api/v1/events", json=event(occurred_at=occurred_at), headers=auth)
    assert response.status_code == 422
    assert ["body", "occurred_at"] in [error["loc"] for error in response.json()["detail"]]
    with engine.db.transaction() as session:
        assert session.scalars(select(Event)).all() == []
    assert count_invitations(engine) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"properties": {"order": "A-1\x00"}},
        {"properties": {"or\x00der": "A-1"}},
        {"idempotency_key": "k\x00"},
    ],
)
def test_text_a_database_cannot_store_is_a_422_not_a_500(
    engine: Container, api: TestClient, auth: dict[str, str], fields: dict[str, object]
) -> None:
    """Found by the fuzz step: PostgreSQL refuses NUL in text and JSONB, which was a 500 there."""
    apply_yaml(engine, POST_DELIVERY)
    response = api.post("/api/v1/events", json=event(**fields), headers=auth)
    assert response.status_code == 422
    assert ["body", next(iter(fields))] == response.json()["detail"][0]["loc"][:2]
    with engine.db.transaction() as session:
        assert session.scalars(select(Event)).all() == []


def test_the_openapi_schema_documents_events(api: TestClient, auth: dict[str, str]) -> None:
    schema = api.get("/openapi.json", headers=auth).json()
    assert "/api/v1/events" in schema["paths"]
    assert "idempotency_key" in schema["components"]["schemas"]["EventIn"]["properties"]


def test_planned_invitations_wait_while_a_campaign_is_paused(
    engine: Container, api: TestClient, auth: dict[str, str], dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    from campaigns.definitions.store import set_status
    from storage.enums import CampaignStatus

    apply_yaml(engine, POST_DELIVERY)
    api.post("/api/v1/events", json=event(), headers=auth)
    with engine.db.transaction() as session:
        set_status("post-delivery", CampaignStatus.PAUSED, session=session)
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    assert dispatcher.drain().claimed == 0
    with engine.db.transaction() as session:
        set_status("post-delivery", CampaignStatus.ACTIVE, session=session)
    assert dispatcher.drain().sent == 1
    assert count_invitations(engine, Invitation.state == InvitationState.SENT) == 1


def test_after_the_event_then_recurring(
    engine: Container, api: TestClient, auth: dict[str, str], dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    from tests.fixtures.engine import plan

    apply_yaml(
        engine,
        POST_DELIVERY.replace("post-delivery", "onboarding")
        .replace("order_delivered", "onboarding_done")
        .replace("delay: 14d", "delay: 7d\n    interval_days: 30"),
    )
    api.post("/api/v1/events", json=event(event="onboarding_done"), headers=auth)
    sent_days = []
    for day in range(80):
        plan(engine)
        if dispatcher.drain().sent:
            sent_days.append(day)
        engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert sent_days == [7, 37, 67]
    assert fake_twilio.count() == 3


# PostgreSQL only: two sessions writing at once: SQLite has one writer at a time
@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_an_event_for_a_contact_planned_elsewhere_at_the_same_moment_is_a_skip_not_an_error(
    engine: Container, api: TestClient, auth: dict[str, str], db: Database
) -> None:
    apply_yaml(engine, POST_DELIVERY)
    assert api.post("/api/v1/events", json=event("evt-0", event="signed_up"), headers=auth).status_code == 201
    now = engine.clock.now()
    with engine.db.transaction() as session:
        contact_id = session.scalars(select(Contact.id)).one()
        campaign_id = session.scalars(select(Campaign.id)).one()
    other = engine.db.sessions()  # the relationship planner, mid-transaction: inserted, not committed
    other.begin()
    other.add(
        Invitation(
            campaign_id=campaign_id,
            contact_id=contact_id,
            state=InvitationState.PLANNED,
            due_at=now,
            token="the-planner-one",
            dedupe_key="from-the-planner",
            created_at=now,
            updated_at=now,
        )
    )
    other.flush()
    answers: list[Any] = []
    poster = threading.Thread(
        target=lambda: answers.append(api.post("/api/v1/events", json=event(), headers=auth))
    )
    poster.start()
    try:
        wait_while_it_runs_until_it_waits_on_a_lock(engine.db, poster)
        other.commit()
    finally:
        other.close()
        poster.join(timeout=10)
    assert answers[0].status_code == 201
    [outcome] = answers[0].json()["campaigns"]
    assert (outcome["outcome"], outcome["reason"]) == ("skipped", "pending_elsewhere")
    assert count_invitations(engine, Invitation.state == InvitationState.PLANNED) == 1
