"""Who sees what of a case in Slack's messages: an alert's escalations stay where its responders are, an assignee
who may no longer act is not shown the customer, a guest from another organisation is never assigned, and
SLACK_PERSONAL_DATA=admins keeps who the customer is out of every message. Customers' text cannot turn the rest of
a line around."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bot import ids
from bot.poster import AlertPoster
from campaigns.followups.deadlines import check_follow_ups
from service.container import Container, build_container
from service.web.app import create_app
from storage.enums import AuditAction
from tests.bot.slack_cases import (
    GUEST,
    GUEST_TEAM,
    VIP_CHANNEL,
    answered,
    audited,
    command,
    customer,
    eventually,
    everything_posted_to,
    follow_up,
    later,
    posted_alert,
    the_alert,
    unclosed_bidi_before,
)
from tests.fixtures.engine import add_contacts, apply_yaml
from tests.fixtures.slack import AGENT, ALERTS, KUDOS, MANAGER, post_to_slack_events
from tests.standins.fake_slack import FakeSlack, dm_channel_id


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


VIP_CAMPAIGN = f"""
campaigns:
  - name: vip
    kind: relationship
    interval_days: 90
    channels: [sms]
    brand: Acme
    slack_channel: {VIP_CHANNEL}
"""


def test_an_escalation_stays_in_the_channel_of_the_alert_it_escalates(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    """A campaign whose alerts go to their own channel keeps its customers there: the members of
    SLACK_ALERT_CHANNEL are not its responders (they may not act on its follow-ups), so the unacknowledged and
    overdue escalations go to the alert's own channel, not to SLACK_ALERT_CHANNEL."""
    fake_slack.set_channel_members(VIP_CHANNEL, [AGENT])
    apply_yaml(engine, VIP_CAMPAIGN)
    add_contacts(engine, [customer("vera", "Vera Vip", properties={"plan": "enterprise"})])
    answered(engine, "vera", 1, "cancelling our contract", campaign="vip")
    later(engine, minutes=11)
    poster.run()
    [alert] = fake_slack.successful("chat.postMessage")
    assert alert["channel"] == VIP_CHANNEL and "Vera Vip" in json.dumps(alert)

    # The manager (in SLACK_ALERT_CHANNEL, not in the VIP channel) may not act on it ...
    vip = the_alert(engine)
    post_to_slack_events(app, vip.click(ids.ACK, MANAGER))
    [refusal] = fake_slack.wait_for("chat.postEphemeral", 1, successful=True)
    assert "Only members of" in refusal["text"]

    # ... and nobody acknowledged it in 4 hours, nor resolved it in 48: both escalations are due.
    later(engine, hours=5)
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 1
    later(engine, hours=44)
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 1
    poster.run()
    shown_to_alert_channel = everything_posted_to(fake_slack, ALERTS)
    for personal in ("Vera Vip", "cancelling our contract", "enterprise", "5678"):
        assert personal not in shown_to_alert_channel, personal
    escalations = [m for m in fake_slack.successful("chat.postMessage") if "rotating_light" in json.dumps(m)]
    assert (
        len(escalations) == 2
    )  # still escalated: where its responders are (VIP_CHANNEL), or without details


@pytest.fixture
def admins_only(engine: Container) -> Iterator[tuple[AlertPoster, TestClient]]:
    """The poster and the app of a process with SLACK_PERSONAL_DATA=admins, on the same database and Slack."""
    settings = dataclasses.replace(engine.settings, slack_personal_data="admins")
    container = build_container(settings, db=engine.db, clock=engine.clock)
    assert container.slack is not None
    with TestClient(create_app(container)) as client:
        yield container.slack.poster, client


def test_personal_data_for_admins_only_keeps_names_out_of_alerts_kudos_and_dms(
    engine: Container, fake_slack: FakeSlack, admins_only: tuple[AlertPoster, TestClient]
) -> None:
    """README: "SLACK_PERSONAL_DATA=admins keeps names and contact details to the admins": like `/nps contact`,
    the alerts, the kudos and the assignee's DM show the score and the comment, not who the customer is."""
    poster, client = admins_only
    add_contacts(
        engine,
        [
            customer("dana", "Dana Detractor", email="dana.d@example.org"),
            customer("paul", "Paul Promoter", email="paul.p@example.org"),
        ],
    )
    answered(engine, "dana", 2, "no one called")
    answered(engine, "paul", 10, "great")
    later(engine, minutes=11)
    poster.run()

    # `/nps contact` is refused to the manager, as documented ...
    refused = command(client, fake_slack, "contact dana", MANAGER).json()
    assert "Dana" not in json.dumps(refused)

    # ... then the manager assigns the case to the agent, who gets a DM.
    alert = the_alert(engine)
    post_to_slack_events(client, alert.click(ids.ASSIGN, MANAGER, selected_user=AGENT))
    fake_slack.wait_for("chat.postMessage", 3, successful=True)
    poster.run()  # waits for the run the click started
    shown = {
        channel: everything_posted_to(fake_slack, channel)
        for channel in (ALERTS, KUDOS, dm_channel_id(AGENT))
    }
    assert "Detractor" in shown[ALERTS] and "great" in shown[KUDOS] and shown[dm_channel_id(AGENT)] != "[]"
    for channel, text in shown.items():
        for personal in ("Dana Detractor", "Paul Promoter", "5678", "example.org"):
            assert personal not in text, (channel, personal)


def test_a_removed_assignee_is_not_sent_the_customers_details_any_more(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    """The agent was assigned while a member of the alert channel, then left it (or was removed). The reminder
    DM a day and a half later (long past the minute memberships are remembered) says when the case is due, not
    who the customer is or what they said: they may no longer act on the case (or see `/nps contact`)."""
    alert = posted_alert(engine, poster)
    post_to_slack_events(app, alert.click(ids.ASSIGN, MANAGER, selected_user=AGENT))
    fake_slack.wait_for("chat.postMessage", 2, successful=True)  # the alert, then the assignment DM
    fake_slack.set_channel_members(ALERTS, [MANAGER])  # the agent is no longer a responder
    later(engine, hours=37)  # 11 of 48 hours left: the reminder is due
    check_follow_ups(engine.db, now=engine.clock.now())
    poster.run()
    refused = command(app, fake_slack, "contact dana", AGENT).json()
    assert "Dana" not in json.dumps(refused)  # the agent may not look the customer up ...
    reminders = [
        m
        for m in fake_slack.successful("chat.postMessage")
        if m["channel"] == dm_channel_id(AGENT) and "Reminder" in json.dumps(m)
    ]
    for reminder in reminders:  # ... nor be reminded of them by name
        shown = json.dumps(reminder, ensure_ascii=False)
        assert "Dana Detractor" not in shown and "nobody called back" not in shown, shown


def test_a_slack_connect_guest_cannot_be_assigned_a_case_they_may_not_act_on(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    """A shared (Slack Connect) alert channel lists the other organisation's members too. README: "A case can
    be assigned only to someone who may act on it": a guest, whose own clicks are refused as foreign, is not
    assignable (users.info names their own workspace), and no DM carries the customer into their organisation."""
    fake_slack.set_channel_members(ALERTS, [MANAGER, AGENT, GUEST])
    fake_slack.add_user(GUEST, team_id=GUEST_TEAM, is_stranger=True)
    alert = posted_alert(engine, poster)

    # The guest's own click is refused before any listener runs ...
    post_to_slack_events(app, alert.click(ids.ACK, GUEST, team_id=GUEST_TEAM))
    assert audited(engine, AuditAction.SLACK_REQUEST_REFUSED)

    # ... but a manager can give them the case.
    post_to_slack_events(app, alert.click(ids.ASSIGN, MANAGER, selected_user=GUEST))
    eventually(
        lambda: fake_slack.count("chat.postEphemeral") or follow_up(engine, alert.follow_up_id).assignee
    )
    if follow_up(engine, alert.follow_up_id).assignee:
        fake_slack.wait_for("chat.update", 1, successful=True)
    poster.run()  # waits for the run the click started
    assert follow_up(engine, alert.follow_up_id).assignee is None
    assert everything_posted_to(fake_slack, dm_channel_id(GUEST)) == "[]"


def test_a_contacts_name_cannot_turn_the_alert_notification_around(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    """The notification (the message's `text`) puts the comment after the name; a name ending in a
    right-to-left override would show the comment, and anything after it, reversed: the override is dropped."""
    add_contacts(engine, [customer("rlo", "Rita \u202e")])
    answered(engine, "rlo", 3, "please call me")
    later(engine, minutes=11)
    poster.run()
    [alert] = fake_slack.successful("chat.postMessage")
    assert unclosed_bidi_before(alert["text"], "please call me") == 0, alert["text"]
    [contact_field] = [f["text"] for f in alert["blocks"][2]["fields"] if f["text"].startswith("*Contact*")]
    assert unclosed_bidi_before(contact_field, " (") == 0, contact_field  # the masked phone after the name
