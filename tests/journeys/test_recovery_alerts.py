"""The Slack case of a detractor whose campaign re-surveys: once the follow-up is resolved and the re-survey
planned, the alert is edited in place to say when it goes out, then that it went out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import ids
from bot.poster import AlertPoster
from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.followups.actions import resolve
from campaigns.planning.recovery import plan_recoveries
from service.container import Container
from storage.tables import AuditEntry, FollowUp, Invitation, SlackAlert
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.fixtures.slack import AGENT, ALERTS, post_to_slack_events
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.slack_signing import block_actions_body
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
    recovery: {after_days: 14}
"""
PHONE = "+4915112345600"
PLANNED = "re-survey planned for <!date^1796637600^{date_short_pretty} {time}|2026-12-07 10:00 UTC>"


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


def sms(app: TestClient, body: str) -> None:
    params = inbound_sms_params(PHONE, FROM_NUMBER, body)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN).status_code == 200


def text_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload.get("blocks", []), ensure_ascii=False)


def test_the_case_says_when_the_re_survey_goes_out(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    add_contacts(engine, [{"external_id": "c0", "name": "Customer 0", "phone": PHONE}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == 1
    sms(app, "3")
    sms(app, "nobody called me back")
    assert poster.run() == 1
    with engine.db.transaction() as session:
        follow_up = session.scalars(select(FollowUp.id)).one()

    now = engine.clock.now()  # Monday 2026-11-23 10:00 UTC: the re-survey is due 14 days later
    assert resolve(engine.db, follow_up, user=AGENT, note="called her", method=None, now=now)
    poster.run()
    assert plan_recoveries(engine.db, now=now, rules=engine.planning_rules).planned == 1
    poster.run()
    updates = fake_slack.successful("chat.update")
    assert "Resolved by" in text_of(updates[-1]) and PLANNED in text_of(updates[-1])

    resolved = updates[-1]
    [reopen_button] = [e for b in resolved["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (reopen_button["action_id"], reopen_button["value"]) == (ids.REOPEN, str(follow_up))
    click = block_actions_body(
        ids.REOPEN, value=str(follow_up), user_id=AGENT, channel_id=ALERTS, message_ts=resolved["ts"]
    )
    assert post_to_slack_events(app, click).status_code == 200
    reopened = fake_slack.wait_for("chat.update", len(updates) + 1, successful=True)[-1]
    assert "re-survey" not in text_of(reopened) and f"Acknowledged by <@{AGENT}>" in text_of(reopened)
    assert ids.RESOLVE in text_of(reopened)  # the case can be resolved again
    with engine.db.transaction() as session:
        assert session.scalars(select(Invitation.state).order_by(Invitation.id)).all() == [
            "responded",
            "cancelled",
        ]
        assert (
            session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()[-1]
            == "follow_up.reopened"
        )


def test_a_reopen_click_from_someone_outside_the_channel_changes_nothing(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    add_contacts(engine, [{"external_id": "c0", "name": "Customer 0", "phone": PHONE}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    dispatcher.drain()
    sms(app, "3")
    engine.clock.advance(minutes=11)  # type: ignore[attr-defined]
    assert poster.run() == 1
    with engine.db.transaction() as session:
        follow_up = session.scalars(select(FollowUp.id)).one()
        ts = session.scalars(select(SlackAlert.ts)).one()
    assert resolve(engine.db, follow_up, user=AGENT, note="called her", method=None, now=engine.clock.now())
    click = block_actions_body(
        ids.REOPEN, value=str(follow_up), user_id="U0STRANGER", channel_id=ALERTS, message_ts=ts
    )
    assert post_to_slack_events(app, click).status_code == 200
    fake_slack.wait_for("chat.postEphemeral", 1)
    with engine.db.transaction() as session:
        assert session.get(FollowUp, follow_up).status == "resolved"  # type: ignore[union-attr]


def test_the_case_says_when_the_re_survey_went_out(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    add_contacts(engine, [{"external_id": "c0", "name": "Customer 0", "phone": PHONE}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    dispatcher.drain()
    sms(app, "3")
    engine.clock.advance(minutes=11)  # type: ignore[attr-defined]
    assert poster.run() == 1
    with engine.db.transaction() as session:
        follow_up = session.scalars(select(FollowUp.id)).one()
    assert resolve(engine.db, follow_up, user=AGENT, note="called her", method=None, now=engine.clock.now())
    assert plan_recoveries(engine.db, now=engine.clock.now(), rules=engine.planning_rules).planned == 1
    poster.run()
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 1
    poster.run()
    sent = "re-survey sent <!date^1796638260^{date_short_pretty} {time}|2026-12-07 10:11 UTC>"
    assert sent in text_of(fake_slack.successful("chat.update")[-1])
