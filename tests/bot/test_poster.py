"""The alert outbox poster against the fake Slack: what Slack receives when answers time out, the database refuses
the ts, a channel is broken, or the client raises something unexpected."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from slack_sdk import WebClient
from sqlalchemy import select

from bot.poster import AlertPoster, Channels
from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from storage.db import Database
from storage.enums import AlertState
from storage.tables import SlackAlert
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.fixtures.slack import ALERTS, KUDOS
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed

POST = "chat.postMessage"
CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


def phone(n: int) -> str:
    return f"+49151123456{n:02d}"


def answered(engine: Container, dispatcher: Dispatcher, app: TestClient, *scores: int) -> None:
    """One surveyed customer per score; each answers it and a comment, so each alert is due at once."""
    add_contacts(
        engine,
        [{"external_id": f"c{n}", "name": f"Customer {n}", "phone": phone(n)} for n in range(len(scores))],
    )
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == len(scores)
    for n, score in enumerate(scores):
        for body in (str(score), f"comment {n}"):
            params = inbound_sms_params(phone(n), FROM_NUMBER, body)
            assert post_signed(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN).status_code == 200


def alerts(engine: Container) -> list[SlackAlert]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(SlackAlert).order_by(SlackAlert.id)))


def posted_customers(fake: FakeSlack) -> list[str]:
    return [json.dumps(p.get("blocks")).split("from Customer ")[1][0] for p in fake.successful(POST)]


def held(alert: SlackAlert) -> str | None:
    """The channel a waiting alert is held on (None: not held)."""
    return alert.held_channel if alert.state is AlertState.PENDING else None


def channel_messages(fake: FakeSlack) -> list[tuple[str, int]]:
    """What the alert channel shows, oldest first: each message's ts and the alert id in its metadata."""
    client = WebClient(token="xoxb-reader", base_url=fake.url)
    history = client.conversations_history(channel=ALERTS, include_all_metadata=True, limit=1000)
    return [(m["ts"], m["metadata"]["event_payload"]["alert_id"]) for m in reversed(history["messages"])]


def later(engine: Container, minutes: float) -> None:
    engine.clock.advance(minutes=minutes)  # type: ignore[attr-defined]


@contextmanager
def alerts_table_away(db: Database) -> Iterator[Callable[[], None]]:
    """The database refusing writes to slack_alerts: the table is renamed away by another connection; the
    callable (also called at the end) brings it back."""
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE slack_alerts RENAME TO slack_alerts_away")
    away = [True]

    def restore() -> None:
        if away[0]:
            with db.engine.begin() as connection:
                connection.exec_driver_sql("ALTER TABLE slack_alerts_away RENAME TO slack_alerts")
            away[0] = False

    try:
        yield restore
    finally:
        restore()


def run_in_thread(poster: AlertPoster) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            poster.run()
        except BaseException as error:  # reported to the test
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


# --- case 5: posted, but the ts was not recorded -----------------------------------------------------------


def test_every_alert_carries_its_id_as_message_metadata(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    answered(engine, dispatcher, app, 3)
    assert poster.run() == 1
    [alert] = alerts(engine)
    [post] = fake_slack.successful(POST)
    assert post["metadata"] == {
        "event_type": "nps_alert",
        "event_payload": {"alert_id": alert.id, "revision": alert.revision},
    }


def test_a_post_whose_answer_timed_out_is_found_by_its_metadata_and_not_posted_again(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    answered(engine, dispatcher, app, 3, 4)
    poster.client.timeout = 1
    fake_slack.set_latency(POST, 3)  # Slack takes the message, the answer comes after the client gave up
    poster.run()
    fake_slack.set_latency(POST, 0)
    for _ in range(10):
        later(engine, 1)
        poster.run()
    assert posted_customers(fake_slack) == ["0", "1"]  # the timed-out one once, and first
    first, second = alerts(engine)
    assert first.state is AlertState.POSTED and second.state is AlertState.POSTED
    message = fake_slack.message(ALERTS, first.ts or "")
    assert message is not None and message["metadata"]["event_payload"]["alert_id"] == first.id
    history = fake_slack.calls("conversations.history")
    assert (
        history
        and history[0]["channel"] == ALERTS
        and history[0]["include_all_metadata"] in ("1", "true", "True")
    )


def test_a_post_whose_connection_was_reset_after_slack_took_it_is_posted_once(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    """slack_sdk's default retry handler resends a request whose connection was reset, which posts twice when
    Slack had taken it; the outbox settles such a post from the channel's history instead."""
    answered(engine, dispatcher, app, 3)
    fake_slack.drop_next(POST)
    poster.run()
    for _ in range(10):
        later(engine, 1)
        poster.run()
    assert posted_customers(fake_slack) == ["0"]
    [alert] = alerts(engine)
    assert alert.state is AlertState.POSTED
    assert channel_messages(fake_slack) == [(alert.ts, alert.id)]


def test_a_ts_the_database_refused_once_is_recorded_in_place(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    answered(engine, dispatcher, app, 3)
    fake_slack.set_latency(POST, 0.5)
    with alerts_table_away_during_post(engine, fake_slack, poster) as (thread, errors, restore):
        poster.sleep = lambda seconds: restore()  # the database is back before the second attempt
        thread.join(timeout=30)
    assert errors == []
    [alert] = alerts(engine)
    assert alert.state is AlertState.POSTED and channel_messages(fake_slack) == [(alert.ts, alert.id)]
    assert fake_slack.count(POST) == 1


@contextmanager
def alerts_table_away_during_post(
    engine: Container, fake: FakeSlack, poster: AlertPoster
) -> Iterator[tuple[threading.Thread, list[BaseException], Callable[[], None]]]:
    thread, errors = run_in_thread(poster)
    fake.wait_for(POST, 1)  # Slack has the message; its answer is on the way
    with alerts_table_away(engine.db) as restore:
        yield thread, errors, restore


def test_a_ts_the_database_kept_refusing_is_found_by_metadata_instead_of_posting_again(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    answered(engine, dispatcher, app, 3)
    fake_slack.set_latency(POST, 0.5)
    poster.sleep = lambda seconds: None
    with alerts_table_away_during_post(engine, fake_slack, poster) as (thread, errors, _restore):
        thread.join(timeout=30)
    assert errors == []  # the poster stopped and said why; the claim is settled by a later run
    fake_slack.set_latency(POST, 0)
    [alert] = alerts(engine)
    assert alert.state is AlertState.POSTING and alert.ts is None  # the poster could not say more
    later(engine, 6)
    poster.run()
    [alert] = alerts(engine)
    assert fake_slack.count(POST) == 1
    assert alert.state is AlertState.POSTED and channel_messages(fake_slack) == [(alert.ts, alert.id)]


def test_a_stale_claim_found_in_history_is_edited_when_the_case_changed(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    from campaigns.followups.actions import acknowledge

    answered(engine, dispatcher, app, 3)
    poster.client.timeout = 1
    fake_slack.set_latency(POST, 3)
    poster.run()
    fake_slack.set_latency(POST, 0)
    with engine.db.transaction() as session:
        from storage.tables import FollowUp

        follow_up = session.scalars(select(FollowUp.id)).one()
    assert acknowledge(engine.db, follow_up, user="U0MANAGER", now=engine.clock.now())
    for _ in range(10):
        later(engine, 1)
        poster.run()
    assert fake_slack.count(POST) == 1
    [update] = fake_slack.successful("chat.update")
    [(ts, _alert_id)] = channel_messages(fake_slack)
    assert update["ts"] == ts and "Acknowledged by" in json.dumps(update["blocks"])


def test_a_stale_claim_that_never_reached_slack_is_posted(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    answered(engine, dispatcher, app, 3)
    [alert] = alerts(engine)
    assert poster._claim(alert.id) is not None  # a poster claimed it, then died before calling Slack
    later(engine, 6)
    assert poster.run() == 1
    assert fake_slack.count(POST) == 1 and alerts(engine)[0].state is AlertState.POSTED


def test_a_stale_claim_is_held_for_review_when_history_cannot_be_read(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    answered(engine, dispatcher, app, 3)
    poster.client.timeout = 1
    fake_slack.set_latency(POST, 3)
    poster.run()
    fake_slack.set_latency(POST, 0)
    fake_slack.fail_next(
        "conversations.history", status=200, times=20, body={"ok": False, "error": "missing_scope"}
    )
    for _ in range(10):
        later(engine, 1)
        poster.run()
    [alert] = alerts(engine)
    assert fake_slack.count(POST) == 1
    assert alert.state is AlertState.REVIEW and "missing_scope" in (alert.last_error or "")
    assert poster.health().review == 1


# --- case 11: channel errors hold the channel, they do not drop its alerts ----------------------------------


def test_not_in_channel_holds_that_channels_alerts_and_posts_them_in_order_when_fixed(
    engine: Container,
    dispatcher: Dispatcher,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answered(engine, dispatcher, app, 3, 4)
    fake_slack.fail_next(POST, status=200, times=3, body={"ok": False, "error": "not_in_channel"})
    with caplog.at_level(logging.ERROR, logger="bot.poster"):
        assert poster.run() == 0
    assert fake_slack.count(POST) == 1  # one try tells us about the channel; the second alert is not burnt
    assert [held(a) for a in alerts(engine)] == [ALERTS, ALERTS]
    assert any("not_in_channel" in r.getMessage() and ALERTS in r.getMessage() for r in caplog.records)
    health = poster.health()
    assert [(h.channel, h.alerts, h.reason) for h in health.held] == [
        (ALERTS, 2, "Slack answered 200 not_in_channel")
    ]
    for _ in range(120):  # still broken twice more, then the bot is invited back
        later(engine, 1)
        poster.run()
    assert posted_customers(fake_slack) == ["0", "1"]
    assert [a.state for a in alerts(engine)] == [AlertState.POSTED, AlertState.POSTED]
    assert poster.health().held == []


def test_an_archived_alert_channel_does_not_hold_the_kudos_channel(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    answered(engine, dispatcher, app, 3, 10, 2)
    fake_slack.fail_next(POST, status=200, body={"ok": False, "error": "is_archived"})
    poster.run()
    states = [(a.kind, a.state, a.held_channel) for a in alerts(engine)]
    assert states == [
        ("detractor", AlertState.PENDING, ALERTS),
        ("kudos", AlertState.POSTED, None),
        ("detractor", AlertState.PENDING, ALERTS),
    ]
    assert [p["channel"] for p in fake_slack.successful(POST)] == [KUDOS]


def test_an_alert_queued_while_its_channel_is_held_waits_behind_the_held_ones(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    answered(engine, dispatcher, app, 3)
    fake_slack.fail_next(POST, status=200, body={"ok": False, "error": "channel_not_found"})
    poster.run()
    with engine.db.transaction() as session:  # a later alert for the same channel, queued during the hold
        first = session.scalars(select(SlackAlert)).one()
        session.add(
            SlackAlert(
                kind=first.kind,
                response_id=first.response_id,
                channel="",
                next_attempt_at=engine.clock.now(),
            )
        )
    poster.run()
    assert fake_slack.count(POST) == 1
    assert [held(a) for a in alerts(engine)] == [ALERTS, ALERTS]


# --- suspected: an unexpected exception from the client ----------------------------------------------------


def test_an_unexpected_answer_keeps_the_alert_first_in_line_and_posts_it_once(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    answered(engine, dispatcher, app, 3, 4)
    fake_slack.fail_next(POST, status=200, body={"ok": True})  # "ok" without a ts: nothing we can edit later
    poster.run()
    for _ in range(10):
        later(engine, 1)
        poster.run()
    first, second = alerts(engine)
    assert channel_messages(fake_slack) == [
        (first.ts, first.id),
        (second.ts, second.id),
    ]  # once each, in order
    assert [first.state, second.state] == [AlertState.POSTED, AlertState.POSTED]


# --- a post Slack took but answered with an error; order across posters --------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {"ok": False, "error": "service_unavailable"}),
        (200, {"ok": False, "error": "fatal_error"}),
        (200, {"ok": False, "error": "internal_error"}),
    ],
    ids=["http-503", "fatal_error", "internal_error"],
)
def test_a_post_slack_took_but_answered_with_a_server_error_is_posted_once(
    engine: Container,
    dispatcher: Dispatcher,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
    status: int,
    body: dict[str, object],
) -> None:
    answered(engine, dispatcher, app, 3)
    fake_slack.fail_after_next(POST, status, body=body)
    poster.run()
    for _ in range(10):
        later(engine, 1)
        poster.run()
    [alert] = alerts(engine)
    assert alert.state is AlertState.POSTED
    assert channel_messages(fake_slack) == [(alert.ts, alert.id)]


def test_two_posters_keep_the_order_of_one_channel(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    """`nps serve` (a click's nudge) and the scheduler's process each have a poster: while one posts alert 1,
    the other must not post alert 2 to the same channel ahead of it."""
    answered(engine, dispatcher, app, 3, 4)
    other = AlertPoster(
        engine.db,
        WebClient(token="xoxb-test-token", base_url=fake_slack.url, timeout=10, retry_handlers=[]),
        clock=engine.clock,
        channels=Channels(alerts=ALERTS, kudos=KUDOS),
    )
    arrived = fake_slack.hold_next(POST, 2.0)
    first = threading.Thread(target=poster.run, daemon=True)
    first.start()
    assert arrived.wait(5)  # alert 1 is claimed and its post is on the way
    other.run()
    first.join(10)
    for _ in range(3):
        later(engine, 1)
        poster.run()
    one, two = alerts(engine)
    assert (one.state, two.state) == (AlertState.POSTED, AlertState.POSTED)
    assert [alert_id for _, alert_id in channel_messages(fake_slack)] == [one.id, two.id]


def test_a_poster_that_died_after_claiming_does_not_let_later_alerts_overtake(
    engine: Container, dispatcher: Dispatcher, fake_slack: FakeSlack, app: TestClient, poster: AlertPoster
) -> None:
    answered(engine, dispatcher, app, 3, 4)
    dead = AlertPoster(
        engine.db,
        WebClient(token="xoxb-test-token", base_url=fake_slack.url, timeout=10, retry_handlers=[]),
        clock=engine.clock,
        channels=Channels(alerts=ALERTS, kudos=KUDOS),
    )
    assert (
        dead._claim(alerts(engine)[0].id) is not None
    )  # claimed, then its process was killed before the call
    for _ in range(12):
        later(engine, 1)
        poster.run()
    one, two = alerts(engine)
    assert (one.state, two.state) == (AlertState.POSTED, AlertState.POSTED)
    assert [alert_id for _, alert_id in channel_messages(fake_slack)] == [one.id, two.id]
