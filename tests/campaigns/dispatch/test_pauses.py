"""A refused credential, account or sender pauses its channel instead of burning the outbox (issue 10, case 8).

What the operator sees: one ERROR line naming the provider's code and what to fix, a pause row that health checks
read, every invitation still planned; once the channel works again, sending resumes by itself.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.dispatch.pauses import FIRST_PAUSE, channel_pauses
from service.container import Container
from storage.enums import Channel, InvitationState
from storage.tables import Invitation
from tests.fixtures.engine import add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import FakeTwilio
from tests.standins.smtp import SmtpSink

SMS_ONLY = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
"""
EMAIL_ONLY = SMS_ONLY.replace("[sms]", "[email]")
PEOPLE = [
    {"external_id": f"p{i}", "phone": f"+49151123456{i:02d}", "email": f"p{i}@example.com", "timezone": "UTC"}
    for i in range(5)
]


def invitations(engine: Container) -> list[Invitation]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(Invitation).order_by(Invitation.id)))


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (20003, "TWILIO_AUTH_TOKEN"),
        (20404, "TWILIO_ACCOUNT_SID"),
        (21606, "TWILIO_FROM_NUMBER"),
        (21212, "TWILIO_FROM_NUMBER"),
        (21608, "trial"),
        (21611, "queue"),
    ],
)
def test_a_refused_credential_or_sender_pauses_sms_and_keeps_every_invitation_planned(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    caplog: pytest.LogCaptureFixture,
    code: int,
    hint: str,
) -> None:
    add_contacts(engine, PEOPLE)
    apply_yaml(engine, SMS_ONLY)
    plan(engine)
    fake_twilio.fail_next(code, times=len(PEOPLE))  # refused until the operator fixes it
    with caplog.at_level(logging.ERROR):
        dispatcher.drain()

    assert fake_twilio.messages() == []
    assert [(i.state, i.attempts) for i in invitations(engine)] == [(InvitationState.PLANNED, 0)] * len(
        PEOPLE
    )
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(str(code) in line and hint in line for line in errors), errors
    with engine.db.transaction() as session:
        [pause] = channel_pauses(session=session)
    assert (pause.channel, pause.code) == (Channel.SMS, str(code))
    assert hint in pause.reason

    fake_twilio.reset()  # fixed: Twilio accepts again
    engine.clock.advance(minutes=20)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert sorted(m.to for m in fake_twilio.messages()) == sorted(p["phone"] for p in PEOPLE)
    assert {i.state for i in invitations(engine)} == {InvitationState.SENT}
    with engine.db.transaction() as session:
        assert channel_pauses(session=session) == []


def test_while_sms_is_paused_a_probe_tries_one_text_and_the_rest_wait(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, PEOPLE)
    apply_yaml(engine, SMS_ONLY)
    plan(engine)
    fake_twilio.fail_next(20003, times=100)  # the token stays wrong
    dispatcher.drain()
    tried = fake_twilio.count()
    for _ in range(3):
        engine.clock.advance(minutes=20)  # type: ignore[attr-defined]
        dispatcher.drain()
        assert fake_twilio.count() == tried + 1  # one probe per pause, not the whole outbox again
        tried += 1
    assert {(i.state, i.attempts) for i in invitations(engine)} == {(InvitationState.PLANNED, 0)}


def test_each_failed_probe_pauses_the_channel_twice_as_long(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, PEOPLE)
    apply_yaml(engine, SMS_ONLY)
    plan(engine)
    fake_twilio.fail_next(20003, times=100)
    dispatcher.drain()
    with engine.db.transaction() as session:
        [first] = channel_pauses(session=session)
    assert (first.probes, first.until - first.since) == (0, timedelta(seconds=FIRST_PAUSE))
    for _ in range(3):
        engine.clock.advance(minutes=20)  # type: ignore[attr-defined]
        dispatcher.drain()  # the probe is refused too
    with engine.db.transaction() as session:
        [pause] = channel_pauses(session=session)
    assert (pause.since, pause.probes) == (first.since, 3)
    assert pause.until - engine.clock.now() == timedelta(seconds=8 * FIRST_PAUSE)


def test_a_refused_smtp_sender_pauses_email_and_keeps_the_invitations(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    add_contacts(engine, PEOPLE[:2])
    apply_yaml(engine, EMAIL_ONLY)
    plan(engine)
    smtp_sink.reject_next(
        550, stage="mail", text="5.7.1 Sender address rejected: not owned by user", times=len(PEOPLE)
    )
    with caplog.at_level(logging.ERROR):
        dispatcher.drain()
    assert smtp_sink.messages() == []
    assert {(i.state, i.attempts) for i in invitations(engine)} == {(InvitationState.PLANNED, 0)}
    assert any("EMAIL_FROM" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)

    smtp_sink.reset()  # the sender is fixed; how many refusals the first drain used depends on the send pool
    engine.clock.advance(minutes=20)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages()) == ["p0@example.com", "p1@example.com"]


@pytest.mark.parametrize(
    "reply",
    [
        "Message rejected: Email address is not verified. The following identities failed the check in "
        "region EU-WEST-1: nps@acme.example",  # Amazon SES, at the end of the content
        "5.7.1 Sender is not authorised to send on behalf of acme.example (SPF)",
    ],
)
def test_a_refusal_of_our_sender_at_the_end_of_the_content_pauses_email_and_keeps_the_invitations(
    engine: Container,
    dispatcher: Dispatcher,
    smtp_sink: SmtpSink,
    caplog: pytest.LogCaptureFixture,
    reply: str,
) -> None:
    add_contacts(engine, PEOPLE[:2])
    apply_yaml(engine, EMAIL_ONLY)
    plan(engine)
    smtp_sink.reject_next(554, stage="data", text=reply, times=len(PEOPLE))  # refused until the operator acts
    with caplog.at_level(logging.ERROR):
        dispatcher.drain()
    assert smtp_sink.messages() == []
    assert smtp_sink.refusals()
    assert {(i.state, i.attempts) for i in invitations(engine)} == {(InvitationState.PLANNED, 0)}
    assert any("EMAIL_FROM" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    with engine.db.transaction() as session:
        [pause] = channel_pauses(session=session)
    assert (pause.channel, pause.code) == (Channel.EMAIL, "554")

    # Verified meanwhile. How many sends the first drain had in flight when the pause landed depends on the
    # send pool's timing, so the sink forgets whatever refusals are left instead of counting them.
    smtp_sink.reset()
    engine.clock.advance(minutes=20)  # type: ignore[attr-defined]
    dispatcher.drain()  # the probe goes through and the rest follows
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages()) == ["p0@example.com", "p1@example.com"]


def test_many_failures_in_a_row_pause_the_channel_instead_of_calling_twilio_for_every_invitation(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    people = [{"external_id": f"o{i}", "phone": f"+4915199{i:06d}", "timezone": "UTC"} for i in range(60)]
    add_contacts(engine, people)
    apply_yaml(engine, SMS_ONLY)
    plan(engine)
    fake_twilio.fail_next(429, times=1000)  # Twilio is down for everyone
    dispatcher.drain()
    assert fake_twilio.count() < 30
    with engine.db.transaction() as session:
        [pause] = channel_pauses(session=session)
    assert pause.channel is Channel.SMS
    assert {i.state for i in invitations(engine)} == {InvitationState.PLANNED}
