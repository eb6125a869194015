"""Attacks on a reply's Core writes (the first answer, its invitation's state, its case and its alert): a score
corrected back and forth over SMS leaves exactly the case and the alert the last score calls for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from storage.db import Database
from storage.enums import Category, InvitationState
from storage.tables import FollowUp, Invitation, Response, SlackAlert
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.twilio_webhooks import inbound_sms_params, new_message_sid, post_signed

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""
ANA = "+4915112345678"
SMS_URL = f"{PUBLIC_URL}/twilio/sms"


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    from service.web.app import create_app

    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def surveyed(engine: Container, dispatcher: Dispatcher) -> None:
    add_contacts(engine, [{"external_id": "ana", "name": "Ana Lima", "phone": ANA}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == 1


def text_in(app: TestClient, body: str) -> Any:
    answered = post_signed(
        app, SMS_URL, inbound_sms_params(ANA, FROM_NUMBER, body, new_message_sid()), DEFAULT_AUTH_TOKEN
    )
    assert answered.status_code == 200
    return answered


def cases_and_alerts(db: Database) -> tuple[list[Any], list[Any]]:
    with db.transaction() as session:
        cases = session.execute(select(FollowUp.status, FollowUp.due_at)).all()
        alerts = session.execute(
            select(SlackAlert.kind, SlackAlert.state, SlackAlert.withdrawn_at).order_by(SlackAlert.id)
        ).all()
    return [tuple(case) for case in cases], [tuple(alert) for alert in alerts]


def the_answer(db: Database) -> tuple[int, Category, bool, InvitationState, Any, Any]:
    with db.transaction() as session:
        response = session.scalars(select(Response)).one()
        invitation = session.get(Invitation, response.invitation_id)
        assert invitation is not None
        return (
            response.score,
            response.category,
            response.late,
            invitation.state,
            invitation.responded_at,
            response.answered_at,
        )


def test_a_detractor_corrected_to_promoter_and_back_has_one_case_and_one_detractor_alert(
    engine: Container, app: TestClient, surveyed: None
) -> None:
    first = engine.clock.now()
    text_in(app, "2")
    cases, alerts = cases_and_alerts(engine.db)
    assert len(cases) == 1 and [kind for kind, *_ in alerts] == ["detractor"]

    engine.clock.advance(seconds=30)  # type: ignore[attr-defined]
    text_in(app, "sorry I meant 9")
    cases, alerts = cases_and_alerts(engine.db)
    assert cases == []  # nobody had picked the case up: it goes
    assert [(kind, withdrawn) for kind, _, withdrawn in alerts] == [("kudos", None)]  # never posted: deleted

    engine.clock.advance(seconds=30)  # type: ignore[attr-defined]
    text_in(app, "oops actually 1")
    cases, alerts = cases_and_alerts(engine.db)
    assert len(cases) == 1
    assert [(kind, withdrawn) for kind, _, withdrawn in alerts] == [("detractor", None)]
    score, category, late, state, responded_at, answered_at = the_answer(engine.db)
    assert (score, category, late, state) == (1, Category.DETRACTOR, False, InvitationState.RESPONDED)
    assert responded_at.replace(tzinfo=None) == first.replace(tzinfo=None)  # the first answer's time, kept
    assert answered_at.replace(tzinfo=None) == engine.clock.now().replace(tzinfo=None)
