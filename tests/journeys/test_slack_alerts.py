"""The inner loop end to end: a detractor's SMS becomes one alert; Assign, Resolve and deadlines act on it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import ids
from bot.poster import AlertPoster
from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.followups.deadlines import check_follow_ups
from service.container import Container
from storage.enums import AlertState, FollowUpStatus
from storage.tables import AuditEntry, FollowUp, SlackAlert
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.fixtures.slack import AGENT, ALERTS, MANAGER, post_to_slack_events
from tests.standins.fake_slack import FakeSlack, dm_channel_id
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.slack_signing import block_actions_body, view_submission_body
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""


def customer(n: int) -> dict[str, Any]:
    return {
        "external_id": f"c{n}",
        "name": f"Customer {n}",
        "phone": f"+49151123456{n:02d}",
        "properties": {"plan": "pro"},
    }


def sms(app: TestClient, sender: str, body: str) -> None:
    response = post_signed(
        app, f"{PUBLIC_URL}/twilio/sms", inbound_sms_params(sender, FROM_NUMBER, body), DEFAULT_AUTH_TOKEN
    )
    assert response.status_code == 200


def surveyed(engine: Container, dispatcher: Dispatcher, count: int = 1) -> None:
    add_contacts(engine, [customer(n) for n in range(count)])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == count


def follow_up_id(engine: Container) -> int:
    with engine.db.transaction() as session:
        return session.scalars(select(FollowUp.id)).one()


def all_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload.get("blocks", []), ensure_ascii=False)


def test_a_detractor_sms_raises_one_alert_that_assign_and_resolve_update_in_place(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "3")
    assert poster.run() == 0  # waiting a little for the comment
    sms(app, customer(0)["phone"], "nobody called me back")
    assert poster.run() == 1
    assert poster.run() == 0

    [alert] = fake_slack.successful("chat.postMessage")
    assert alert["channel"] == ALERTS
    text = all_text(alert)
    assert "Detractor 3/10 from Customer 0" in text
    assert "nobody called me back" in text
    assert "+4••••••••••00" in text and "+4915112345600" not in text  # masked
    assert "pulse via sms" in text and "plan:* pro" in text
    action_ids = [e["action_id"] for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert action_ids == [ids.ACK, ids.ASSIGN, ids.RESOLVE]

    fid = follow_up_id(engine)
    click = block_actions_body(
        ids.ASSIGN, block_id=f"follow_up:{fid}", selected_user=AGENT, user_id=MANAGER, **on_alert(engine)
    )
    assert post_to_slack_events(app, click).status_code == 200
    [update] = fake_slack.wait_for("chat.update", 1, successful=True)
    assert update["ts"] == alert_ts(engine) and f"Assigned to <@{AGENT}> by <@{MANAGER}>" in all_text(update)
    dm = fake_slack.wait_for("chat.postMessage", 2, successful=True)[1]
    assert dm["channel"] == dm_channel_id(AGENT)
    assert "You were assigned a follow-up" in all_text(dm)

    # A double click changes nothing and posts nothing.
    post_to_slack_events(app, click)
    poster.run()
    assert fake_slack.count("chat.postMessage") == 2

    resolve_click = block_actions_body(ids.RESOLVE, value=str(fid), user_id=AGENT, **on_alert(engine))
    assert post_to_slack_events(app, resolve_click).status_code == 200
    [opened] = fake_slack.wait_for("views.open", 1)
    assert opened["view"]["callback_id"] == ids.RESOLVE_VIEW
    values = {
        "outcome": {"note": {"type": "plain_text_input", "value": "Called her, refund issued"}},
        "method": {"choice": {"type": "static_select", "selected_option": {"value": "phone call"}}},
    }
    submit = view_submission_body(
        ids.RESOLVE_VIEW, values, private_metadata=opened["view"]["private_metadata"], user_id=AGENT
    )
    assert post_to_slack_events(app, submit).status_code == 200
    updates = fake_slack.wait_for("chat.update", 2, successful=True)
    assert "Resolved by" in all_text(updates[-1]) and "refund issued" in all_text(updates[-1])
    with engine.db.transaction() as session:
        follow_up = session.get(FollowUp, fid)
        assert follow_up is not None and follow_up.status is FollowUpStatus.RESOLVED
        assert (follow_up.contact_method, follow_up.outcome_note) == (
            "phone call",
            "Called her, refund issued",
        )
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_type == "follow_up")
        ).all()
    assert actions == ["follow_up.assigned", "follow_up.resolved"]


def alert_ts(engine: Container) -> str | None:
    with engine.db.transaction() as session:
        return session.scalars(select(SlackAlert.ts).where(SlackAlert.kind == "detractor")).one()


def on_alert(engine: Container) -> dict[str, Any]:
    """Where a click on the detractor alert's buttons comes from: the alert's message, as Slack says."""
    return {"channel_id": ALERTS, "message_ts": alert_ts(engine)}


def test_a_resolve_with_a_contact_method_outside_the_choices_is_kept_without_one(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "2")
    sms(app, customer(0)["phone"], "terrible")
    poster.run()
    fid = follow_up_id(engine)
    values = {
        "outcome": {"note": {"type": "plain_text_input", "value": "Called, sorted"}},
        "method": {"choice": {"type": "static_select", "selected_option": {"value": "carrier pigeon"}}},
    }
    submit = view_submission_body(
        ids.RESOLVE_VIEW, values, private_metadata=f"{fid}|{ALERTS}|{alert_ts(engine)}", user_id=AGENT
    )
    assert post_to_slack_events(app, submit).status_code == 200
    fake_slack.wait_for("chat.update", 1, successful=True)  # the listener runs after the ack
    with engine.db.transaction() as session:
        follow_up = session.get(FollowUp, fid)
        assert follow_up is not None and follow_up.status is FollowUpStatus.RESOLVED
        assert (follow_up.contact_method, follow_up.outcome_note) == (None, "Called, sorted")


def test_an_overdue_follow_up_escalates_once(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "2")
    sms(app, customer(0)["phone"], "terrible")
    poster.run()
    fid = follow_up_id(engine)
    post_to_slack_events(
        app, block_actions_body(ids.ACK, value=str(fid), user_id=MANAGER, **on_alert(engine))
    )
    fake_slack.wait_for("chat.update", 1, successful=True)

    engine.clock.advance(hours=47)  # type: ignore[attr-defined]
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 0
    engine.clock.advance(hours=2)  # type: ignore[attr-defined]
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 1
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 0
    poster.run()
    escalation = fake_slack.successful("chat.postMessage")[-1]
    assert escalation["channel"] == ALERTS and "Overdue follow-up" in all_text(escalation)


def test_an_unacknowledged_detractor_escalates(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "0")
    engine.clock.advance(hours=5)  # type: ignore[attr-defined]
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 1
    poster.run()
    texts = [all_text(m) for m in fake_slack.successful("chat.postMessage")]
    assert len(texts) == 2 and "Nobody has acknowledged" in texts[1]


def test_slack_down_with_429_then_500_every_alert_arrives_once_in_order(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher, count=4)
    for n in range(4):
        sms(app, customer(n)["phone"], str(n))
        sms(app, customer(n)["phone"], f"comment {n}")
    fake_slack.fail_next("chat.postMessage", status=429, times=2, retry_after=30)
    fake_slack.fail_next("chat.postMessage", status=500, times=3)
    for _ in range(30):
        poster.run()
        engine.clock.advance(minutes=5)  # type: ignore[attr-defined]
    posted = fake_slack.successful("chat.postMessage")
    assert [f"Customer {n}" in all_text(p) for n, p in enumerate(posted)] == [True] * 4
    assert len(posted) == 4
    with engine.db.transaction() as session:
        assert set(session.scalars(select(SlackAlert.state))) == {AlertState.POSTED}


def test_a_comment_after_the_alert_updates_it(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "4")
    engine.clock.advance(minutes=11)  # type: ignore[attr-defined]
    assert poster.run() == 1
    assert "No comment yet" in all_text(fake_slack.successful("chat.postMessage")[0])
    sms(app, customer(0)["phone"], "late reason")
    poster.run()
    [update] = fake_slack.successful("chat.update")
    assert "late reason" in all_text(update)
    assert fake_slack.count("chat.postMessage") == 1


def test_promoters_go_to_the_kudos_channel(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "10")
    sms(app, customer(0)["phone"], "love it")
    poster.run()
    [kudos] = fake_slack.successful("chat.postMessage")
    assert kudos["channel"] == "C0KUDOS" and "love it" in all_text(kudos)


def test_a_campaign_can_route_alerts_and_follow_up_passives(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    add_contacts(engine, [customer(0), customer(1)])
    apply_yaml(engine, CAMPAIGN + "    slack_channel: C0VIPTEAM\n    follow_up: [detractor, passive]\n")
    plan(engine)
    dispatcher.drain()
    sms(app, customer(0)["phone"], "1")
    sms(app, customer(0)["phone"], "awful")
    sms(app, customer(1)["phone"], "7")
    poster.run()
    [alert] = fake_slack.successful("chat.postMessage")
    assert alert["channel"] == "C0VIPTEAM"
    with engine.db.transaction() as session:
        due = sorted(f.due_at - engine.clock.now() for f in session.scalars(select(FollowUp)))
    assert [d.days for d in due] == [2, 5]  # detractor 48 h, passive 5 days


def test_campaign_slack_fields_are_validated() -> None:
    import pytest

    from campaigns.definitions.campaign_file import parse_campaign_file
    from campaigns.definitions.problems import CampaignFileError

    with pytest.raises(CampaignFileError) as caught:
        parse_campaign_file(CAMPAIGN + "    slack_channel: '#vip'\n    follow_up: [detractors, fans]\n")
    message = str(caught.value)
    assert "slack_channel: '#vip' is not a Slack channel id" in message
    assert "follow_up: 'fan' is not a category" in message


def two_detractors(engine: Container, dispatcher: Dispatcher, app: TestClient) -> None:
    surveyed(engine, dispatcher, count=2)
    for n in range(2):
        sms(app, customer(n)["phone"], str(n))
        sms(app, customer(n)["phone"], f"comment {n}")


def alert_rows(engine: Container) -> list[SlackAlert]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(SlackAlert).order_by(SlackAlert.id)))


def test_an_alert_slack_refuses_for_good_does_not_block_the_rest(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    two_detractors(engine, dispatcher, app)
    # A refusal about this message alone (a channel error holds the whole channel: tests/bot/test_poster.py).
    fake_slack.fail_next("chat.postMessage", status=200, body={"ok": False, "error": "invalid_blocks"})
    assert poster.run() == 1
    first, second = alert_rows(engine)
    assert (first.state, first.last_error) == (AlertState.FAILED, "Slack answered 200 invalid_blocks")
    assert second.state is AlertState.POSTED


def test_retries_back_off_longer_each_time(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    two_detractors(engine, dispatcher, app)
    fake_slack.fail_next("chat.postMessage", status=500, times=3)
    waits = []
    for _ in range(3):
        poster.run()
        first = alert_rows(engine)[0]
        waits.append((first.next_attempt_at - engine.clock.now()).total_seconds())
        engine.clock.set(first.next_attempt_at)  # type: ignore[attr-defined]
    assert alert_rows(engine)[0].attempts == 3
    assert waits[0] < waits[1] < waits[2]
    poster.run()
    assert [a.state for a in alert_rows(engine)] == [AlertState.POSTED, AlertState.POSTED]


def test_a_change_while_the_alert_is_being_posted_is_posted_too(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    from campaigns.followups.actions import acknowledge

    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "3")
    sms(app, customer(0)["phone"], "rude")
    alert_id = alert_rows(engine)[0].id
    revision = poster._claim(alert_id)  # the poster starts talking to Slack ...
    assert revision is not None
    # ... a manager clicks Acknowledge meanwhile ...
    assert acknowledge(engine.db, follow_up_id(engine), user=MANAGER, now=engine.clock.now())
    poster._deliver(alert_id, revision)  # ... the post that rendered the old state finishes
    assert alert_rows(engine)[0].state is AlertState.PENDING
    poster.run()
    [update] = fake_slack.successful("chat.update")
    assert f"Acknowledged by <@{MANAGER}>" in all_text(update)


def test_customer_text_cannot_ping_or_fake_a_status_line(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "1")
    sms(app, customer(0)["phone"], "<!channel> refund me\n:white_check_mark: Resolved by <@U0BOSS>")
    poster.run()
    [alert] = fake_slack.successful("chat.postMessage")
    comment = alert["blocks"][1]["text"]["text"]
    assert comment == ">&lt;!channel&gt; refund me\n>:white_check_mark: Resolved by &lt;@U0BOSS&gt;"
    assert "<!channel>" not in alert["text"]


def test_the_assignee_is_reminded_before_the_deadline(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "4")
    sms(app, customer(0)["phone"], "meh")
    poster.run()
    fid = follow_up_id(engine)
    click = block_actions_body(
        ids.ASSIGN, block_id=f"follow_up:{fid}", selected_user=AGENT, user_id=MANAGER, **on_alert(engine)
    )
    post_to_slack_events(app, click)
    fake_slack.wait_for("chat.postMessage", 2, successful=True)  # the alert, then the assignment DM
    poster.run()
    engine.clock.advance(hours=35)  # type: ignore[attr-defined]  # 13 of 48 hours left: not yet
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 0
    engine.clock.advance(hours=2)  # type: ignore[attr-defined]  # 11 hours left, under a quarter
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 1
    poster.run()
    reminder = fake_slack.successful("chat.postMessage")[-1]
    assert reminder["channel"] == dm_channel_id(AGENT) and "Reminder: this follow-up is due" in all_text(
        reminder
    )
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 0


def test_a_score_corrected_while_its_alert_is_being_posted_withdraws_the_posted_message(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    import threading

    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "3")
    engine.clock.advance(minutes=11)  # type: ignore[attr-defined]  # no comment came: the alert is due
    fake_slack.set_latency("chat.postMessage", 1)
    posting = threading.Thread(target=poster.run)
    posting.start()
    fake_slack.wait_for("chat.postMessage", 1)  # Slack has "Detractor 3/10"; its answer is on the way
    sms(app, customer(0)["phone"], "I meant 10")  # the correction lands meanwhile
    posting.join(timeout=30)
    fake_slack.set_latency("chat.postMessage", 0)
    engine.clock.advance(minutes=11)  # type: ignore[attr-defined]  # the kudos waited for a comment too
    poster.run()

    first, kudos = fake_slack.successful("chat.postMessage")
    assert first["channel"] == ALERTS and "Detractor 3/10" in all_text(first)
    assert kudos["channel"] == "C0KUDOS" and "Promoter 10/10" in kudos["text"]
    [withdrawn] = fake_slack.successful("chat.update")
    assert withdrawn["channel"] == ALERTS
    shown = fake_slack.message(ALERTS, withdrawn["ts"])
    assert shown is not None
    assert "Detractor 3/10" not in all_text(shown) and "corrected the answer to 10/10" in all_text(shown)
    assert "actions" not in [b["type"] for b in shown["blocks"]]  # nothing left to acknowledge
    assert "corrected" in shown["text"]
    assert [(a.kind, a.state) for a in alert_rows(engine)] == [
        ("detractor", AlertState.WITHDRAWN),
        ("kudos", AlertState.POSTED),
    ]
    with engine.db.transaction() as session:
        assert session.scalars(select(FollowUp)).all() == []  # no detractor case is left open


def test_a_score_corrected_before_its_alert_was_posted_posts_nothing_about_it(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher)
    sms(app, customer(0)["phone"], "3")
    sms(app, customer(0)["phone"], "I meant 10")
    engine.clock.advance(minutes=11)  # type: ignore[attr-defined]
    poster.run()
    [kudos] = fake_slack.successful("chat.postMessage")
    assert kudos["channel"] == "C0KUDOS"
    assert fake_slack.count("chat.update") == 0
