"""Notices to the admin channel (SLACK_ADMIN_CHANNEL): a channel pause and a held alert queue are announced once
when they begin and once when they end, never per failed probe or retry, and each notice is posted at most once."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.poster import AlertPoster
from campaigns.clock import ManualClock
from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container, build_container
from service.scheduler import Ticker
from storage.db import Database
from storage.enums import NoticeState
from storage.tables import AdminNotice
from tests.fixtures.engine import add_contacts, apply_yaml, plan
from tests.fixtures.seeding import Seeder
from tests.fixtures.slack import ALERTS
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import FakeTwilio

POST = "chat.postMessage"
ADMIN_CHANNEL = "C0OPS"
SMS_ONLY = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
"""
PEOPLE = [{"external_id": f"p{i}", "phone": f"+49151123456{i:02d}", "timezone": "UTC"} for i in range(3)]


@pytest.fixture
def engine(slack_engine: Container, db: Database, clock: ManualClock) -> Container:
    settings = dataclasses.replace(slack_engine.settings, slack_admin_channel=ADMIN_CHANNEL)
    return build_container(settings, db=db, clock=clock)


@pytest.fixture
def ticker(engine: Container) -> Iterator[Ticker]:
    ticker = Ticker(engine, holder="serve")
    ticker.renew_lease()
    yield ticker
    ticker.dispatcher.close()


def post_notices(ticker: Ticker) -> None:
    """The scheduler's jobs of one tick: the lease, then the notices."""
    ticker.renew_lease()
    ticker.scheduler.get_job("admin_notices").func()


def admin_posts(fake_slack: FakeSlack) -> list[str]:
    return [str(p["text"]) for p in fake_slack.successful(POST) if p["channel"] == ADMIN_CHANNEL]


def later(engine: Container, **delta: float) -> None:
    engine.clock.advance(**delta)  # type: ignore[attr-defined]


def sms_campaign(engine: Container) -> None:
    add_contacts(engine, PEOPLE)
    apply_yaml(engine, SMS_ONLY)
    plan(engine)


def notices(db: Database) -> list[tuple[str, NoticeState]]:
    with db.transaction() as session:
        return [(n.subject, n.state) for n in session.scalars(select(AdminNotice).order_by(AdminNotice.id))]


# --- channel pauses ---------------------------------------------------------------------------------------------


def test_a_channel_pause_is_announced_once_when_it_begins_and_once_when_it_ends(
    engine: Container, dispatcher: Dispatcher, ticker: Ticker, fake_twilio: FakeTwilio, fake_slack: FakeSlack
) -> None:
    sms_campaign(engine)
    fake_twilio.fail_next(20003, times=100)  # the token stays wrong for a while
    dispatcher.drain()
    post_notices(ticker)
    [paused] = admin_posts(fake_slack)
    assert "SMS sending is paused" in paused
    assert "20003" in paused and "TWILIO_AUTH_TOKEN" in paused

    for _ in range(3):  # failed probes extend the pause: nothing new to say
        later(engine, minutes=20)
        assert dispatcher.drain().claimed
        post_notices(ticker)
    assert admin_posts(fake_slack) == [paused]

    fake_twilio.reset()  # fixed
    later(engine, minutes=20)
    dispatcher.drain()
    post_notices(ticker)
    post_notices(ticker)
    assert admin_posts(fake_slack) == [paused, "SMS sending works again: the pause is lifted."]
    assert notices(engine.db) == [("channel:sms", NoticeState.POSTED)] * 2


def test_without_an_admin_channel_a_pause_is_only_logged(
    slack_engine: Container,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher = slack_engine.new_dispatcher(worker_id="w")
    ticker = Ticker(slack_engine, holder="serve")
    try:
        ticker.renew_lease()
        sms_campaign(slack_engine)
        fake_twilio.fail_next(20003, times=100)
        with caplog.at_level(logging.ERROR):
            dispatcher.drain()
        assert ticker.scheduler.get_job("admin_notices") is None
    finally:
        dispatcher.close()
        ticker.dispatcher.close()
    assert any("sms sending paused" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert fake_slack.count(POST) == 0
    with slack_engine.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AdminNotice)) == 0


# --- the Slack alert queue -------------------------------------------------------------------------------------


def test_a_held_alert_channel_is_announced_once_and_once_more_when_it_works_again(
    engine: Container, seed: Seeder, poster: AlertPoster, ticker: Ticker, fake_slack: FakeSlack
) -> None:
    seed.detractor(at=engine.clock.now() - timedelta(minutes=15))
    fake_slack.refuse_channel(ALERTS, "not_in_channel")
    poster.run()
    post_notices(ticker)
    [held] = admin_posts(fake_slack)
    assert f"Slack alerts to {ALERTS} are held" in held and "not_in_channel" in held

    for _ in range(3):  # retried every five minutes, still refused
        later(engine, minutes=6)
        poster.run()
        post_notices(ticker)
    assert admin_posts(fake_slack) == [held]

    fake_slack.accept_channel(ALERTS)
    later(engine, minutes=6)
    poster.run()
    post_notices(ticker)
    assert admin_posts(fake_slack) == [held, f"Slack alerts to {ALERTS} are posted again."]
    assert [p["channel"] for p in fake_slack.successful(POST)].count(ALERTS) == 1


def test_an_app_slack_refuses_is_announced_once_slack_takes_the_notice(
    engine: Container, seed: Seeder, poster: AlertPoster, ticker: Ticker, fake_slack: FakeSlack
) -> None:
    seed.detractor(at=engine.clock.now() - timedelta(minutes=15))
    fake_slack.fail_next(POST, status=200, times=2, body={"ok": False, "error": "invalid_auth"})
    poster.run()
    post_notices(ticker)  # refused too: the notice waits, it is not dropped
    assert admin_posts(fake_slack) == []
    later(engine, minutes=2)
    post_notices(ticker)
    [held] = admin_posts(fake_slack)
    assert "Slack refuses the app" in held and "invalid_auth" in held and "SLACK_BOT_TOKEN" in held


# --- at most once -------------------------------------------------------------------------------------------------


def paused_sms(engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio) -> None:
    sms_campaign(engine)
    fake_twilio.fail_next(20003, times=100)
    dispatcher.drain()


def test_a_notice_whose_answer_was_lost_is_not_posted_again(
    engine: Container,
    dispatcher: Dispatcher,
    ticker: Ticker,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    paused_sms(engine, dispatcher, fake_twilio)
    fake_slack.drop_next(POST)  # Slack takes it, the answer is lost
    with caplog.at_level(logging.WARNING):
        post_notices(ticker)
    later(engine, minutes=30)
    post_notices(ticker)
    assert fake_slack.count(POST) == 1  # in Slack once; the lost answer is not taken for "not posted"
    assert notices(engine.db) == [("channel:sms", NoticeState.FAILED)]
    assert any("not posted again" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "refusal",
    [
        {"status": 429},
        {"status": 200, "body": {"ok": False, "error": "not_in_channel"}},
    ],
)
def test_a_notice_slack_did_not_take_is_posted_later_once(
    engine: Container,
    dispatcher: Dispatcher,
    ticker: Ticker,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    refusal: dict[str, Any],
) -> None:
    paused_sms(engine, dispatcher, fake_twilio)
    fake_slack.fail_next(POST, **refusal)
    post_notices(ticker)
    post_notices(ticker)  # not due yet: waits its back-off
    assert fake_slack.count(POST) == 1
    later(engine, minutes=2)
    post_notices(ticker)
    post_notices(ticker)
    assert len(admin_posts(fake_slack)) == 1
    assert fake_slack.count(POST) == 2
