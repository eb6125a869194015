"""What the operator reads in the log for each thing that happens: one line, in words, with ids, masked.

Each scenario runs the real path (fake Twilio, the SMTP sink, the fake Slack, signed webhooks) and asserts the
lines it produced, by their event name (`record.event`), their fields and their words.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher, DispatchStats
from campaigns.dispatch.expiry import expire_invitations
from campaigns.followups.actions import acknowledge, assign, resolve
from campaigns.followups.deadlines import check_follow_ups
from service.container import Container
from service.web.app import create_app
from storage.enums import ContactMethod, MessagePurpose
from storage.tables import FollowUp
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.fixtures.slack import MANAGER
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed, status_callback_params

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms, email]
    brand: Acme
    remind_after: 3d
    expires_after: 14d
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""
ANA = {"external_id": "ana", "name": "Ana Lima", "phone": "+4915112345678", "timezone": "UTC"}
BEN = {
    **ANA,
    "external_id": "ben",
    "name": "Ben Okafor",
    "phone": "+4915112345679",
    "email": "ben@example.com",
}
MASKED_ANA = "+4••••••••••78"


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        yield client


@pytest.fixture
def events(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO):
        yield caplog


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


def one(caplog: pytest.LogCaptureFixture, event: str) -> tuple[dict[str, Any], str]:
    found = lines(caplog, event)
    assert len(found) == 1, [r.getMessage() for r in caplog.records]
    return found[0].fields, found[0].getMessage()  # type: ignore[attr-defined]


def surveyed(engine: Container, dispatcher: Dispatcher, *contacts: dict[str, Any]) -> DispatchStats:
    add_contacts(engine, list(contacts or [ANA]))
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    return dispatcher.drain()


def reply(app: TestClient, body: str, sender: str = ANA["phone"]) -> None:
    params = inbound_sms_params(sender, FROM_NUMBER, body)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN).status_code == 200


def callback(app: TestClient, sid: str, status: str, code: int | None = None) -> None:
    params = status_callback_params(sid, status, ANA["phone"], FROM_NUMBER, error_code=code)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/status", params, DEFAULT_AUTH_TOKEN).status_code == 204


def test_a_survey_sent_and_delivered_says_campaign_channel_invitation_and_the_masked_number(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient, events: Any
) -> None:
    surveyed(engine, dispatcher)
    fields, text = one(events, "survey.sent")
    assert fields["campaign"] == "pulse" and fields["channel"] == "sms" and fields["to"] == MASKED_ANA
    assert text.startswith("survey sent: campaign=pulse channel=sms invitation=")
    assert ANA["phone"] not in text

    callback(app, fake_twilio.messages()[0].sid, "delivered")
    fields, text = one(events, "survey.delivered")
    assert fields["invitation"] == one(events, "survey.sent")[0]["invitation"]
    assert text.startswith("survey delivered: invitation=")


def test_the_dispatch_run_is_counted_in_words(engine: Container, dispatcher: Dispatcher, events: Any) -> None:
    stats = surveyed(engine, dispatcher, ANA, BEN)
    assert stats.summary("surveys") == "surveys: 2 due, 2 sent"
    assert "DispatchStats" not in stats.summary("surveys")


def test_a_send_refused_for_the_number_names_the_code_its_meaning_and_what_happens_next(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, events: Any
) -> None:
    fake_twilio.fail_to(BEN["phone"], 21211)
    surveyed(engine, dispatcher, BEN)
    fields, text = one(events, "survey.failed")
    assert fields["code"] == "21211" and "the address is not valid" in fields["next"]
    assert "next channel" in fields["next"]
    assert text.startswith("survey not sent: campaign=pulse channel=sms")
    # It goes on by email, and that is logged too (address masked).
    dispatcher.drain()
    [sent] = lines(events, "survey.sent")
    assert sent.fields["channel"] == "email" and sent.fields["to"] == "b•••@example.com"  # type: ignore[attr-defined]


def test_an_undelivered_callback_says_what_the_carriers_code_means(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient, events: Any
) -> None:
    surveyed(engine, dispatcher)
    callback(app, fake_twilio.messages()[0].sid, "undelivered", 30007)
    fields, text = one(events, "survey.undelivered")
    assert fields["code"] == "30007" and "spam" in fields["meaning"]
    assert text.startswith("survey not delivered: the carrier reported undelivered")


def test_a_detractors_reply_comment_and_alert_are_each_one_line(
    engine: Container,
    dispatcher: Dispatcher,
    app: TestClient,
    fake_slack: FakeSlack,
    events: Any,
) -> None:
    surveyed(engine, dispatcher)
    reply(app, "3")
    fields, text = one(events, "reply.recorded")
    assert (fields["score"], fields["category"], fields["channel"], fields["campaign"]) == (
        3,
        "detractor",
        "sms",
        "pulse",
    )
    queued, _ = one(events, "alert.queued")
    assert queued["kind"] == "detractor" and queued["response"] == fields["response"]

    reply(app, "nobody called me back")
    comment, text = one(events, "reply.comment")
    assert comment["characters"] == len("nobody called me back")
    assert "nobody" not in text  # free text is never a field
    assert engine.slack is not None
    assert engine.slack.poster.run() == 1
    posted, text = one(events, "alert.posted")
    assert posted["kind"] == "detractor" and posted["ts"]
    assert text.startswith("Slack alert posted: alert=")


def test_follow_up_actions_deadlines_and_escalations_are_logged(
    engine: Container, dispatcher: Dispatcher, app: TestClient, events: Any
) -> None:
    surveyed(engine, dispatcher)
    reply(app, "2")
    with engine.db.transaction() as session:
        follow_up = session.scalars(select(FollowUp.id)).one()
    now = engine.clock.now()
    engine.clock.advance(hours=5)  # type: ignore[attr-defined]
    check_follow_ups(engine.db, now=engine.clock.now())
    assert one(events, "follow_up.escalated")[0]["follow_up"] == follow_up
    assert acknowledge(engine.db, follow_up, user=MANAGER, now=now)
    assert assign(engine.db, follow_up, assignee="U0AGENT", by=MANAGER, now=now)
    assert one(events, "follow_up.acknowledged")[0] == {"follow_up": follow_up, "by": MANAGER}
    assert one(events, "follow_up.assigned")[0] == {
        "follow_up": follow_up,
        "assignee": "U0AGENT",
        "by": MANAGER,
    }
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    check_follow_ups(engine.db, now=engine.clock.now())
    fields, text = one(events, "follow_up.overdue")
    assert fields["assignee"] == "U0AGENT" and text.startswith("follow-up overdue:")
    assert resolve(
        engine.db, follow_up, user="U0AGENT", note="called back", method=ContactMethod.PHONE_CALL, now=now
    )
    fields, text = one(events, "follow_up.resolved")
    assert fields["by"] == "U0AGENT" and fields["method"] == "phone call" and "called back" not in text


def test_opt_out_and_opt_in_name_their_source(
    engine: Container, dispatcher: Dispatcher, app: TestClient, events: Any
) -> None:
    surveyed(engine, dispatcher)
    reply(app, "STOP")
    fields, text = one(events, "consent.opted_out")
    assert fields["channel"] == "sms" and fields["address"] == MASKED_ANA and fields["source"]
    assert text.startswith("opted out: channel=sms address=+4")
    reply(app, "START")
    assert one(events, "consent.opted_in")[0]["address"] == MASKED_ANA
    reply(app, "STOP")  # again: a second line, since the status changed again
    assert len(lines(events, "consent.opted_out")) == 2


def test_a_reminder_and_an_expiry_are_logged(engine: Container, dispatcher: Dispatcher, events: Any) -> None:
    surveyed(engine, dispatcher)
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    assert dispatcher.drain(MessagePurpose.REMINDER).sent == 1
    fields, text = one(events, "reminder.sent")
    assert fields["campaign"] == "pulse" and text.startswith("reminder sent: campaign=pulse")
    engine.clock.advance(days=12)  # type: ignore[attr-defined]
    assert expire_invitations(dispatcher) == 1
    fields, text = one(events, "survey.expired")
    assert (fields["campaign"], fields["count"]) == ("pulse", 1)
    assert text.startswith("surveys expired unanswered: campaign=pulse count=1 invitations=")


def test_a_channel_pause_and_its_end_are_logged(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, events: Any
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN.replace("[sms, email]", "[sms]"))
    plan(engine)
    fake_twilio.fail_next(20003, times=10)
    dispatcher.drain()
    fields, text = one(events, "channel.paused")
    assert fields["code"] == "20003" and "TWILIO_AUTH_TOKEN" in fields["reason"]
    assert text.startswith("sms sending paused")
    fake_twilio.reset()
    engine.clock.advance(minutes=20)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert one(events, "channel.resumed")[0] == {"channel": "sms"}


def test_a_reconciliation_says_what_it_decided_and_why(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, events: Any
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    dispatcher._prepare(dispatcher._claim(), DispatchStats())  # a worker that "dies" before it sends
    engine.clock.advance(engine.dispatch_config().claim_timeout * 2)  # type: ignore[attr-defined]
    dispatcher.drain()
    fields, text = one(events, "reconciliation.decided")
    assert fields["evidence"] == "the provider's log does not have it"
    assert fields["decision"] == "requeued: sent when due again"
    assert text.startswith("reconciled an unfinished send: invitation=")
    assert len(lines(events, "survey.sent")) == 1


def test_a_rolled_back_change_logs_nothing(engine: Container, events: Any) -> None:
    from campaigns.contacts.consents import Cause, opt_out_address
    from storage.enums import Channel, ConsentSource

    with pytest.raises(RuntimeError), engine.db.transaction() as session:
        cause = Cause(ConsentSource.ADMIN)
        opt_out_address(Channel.SMS, ANA["phone"], cause=cause, at=engine.clock.now(), session=session)
        raise RuntimeError("rolled back")
    assert lines(events, "consent.opted_out") == []


def test_no_line_of_a_round_trip_carries_the_whole_number(
    engine: Container, dispatcher: Dispatcher, app: TestClient, events: Any
) -> None:
    surveyed(engine, dispatcher)
    reply(app, "4")
    reply(app, "STOP")
    shown = [r for r in events.records if getattr(r, "event", None)]
    assert len(shown) >= 4
    assert all(ANA["phone"] not in r.getMessage() for r in shown)
