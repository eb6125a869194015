"""Temporary failures are retried for as long as the survey lasts, then the next channel (issue 10, case 9).

Retries are bounded by time, not by a count; a send-window requeue is not an attempt; Twilio's Retry-After is
obeyed; a channel whose retries ran out hands the survey to the campaign's next channel.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from storage.enums import Channel, InvitationState
from storage.tables import Consent, Invitation
from tests.fixtures.engine import add_contacts, apply_yaml, plan
from tests.standins._server import IncomingRequest, Reply
from tests.standins.fake_twilio import FakeTwilio
from tests.standins.smtp import SmtpSink

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms, email]
"""
ANA = {"external_id": "ana", "phone": "+4915112345678", "timezone": "UTC"}


def invitation(engine: Container) -> Invitation:
    with engine.db.transaction() as session:
        return session.scalars(select(Invitation)).one()


def test_an_eight_minute_twilio_outage_fails_nothing_for_good(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    people = [{**ANA, "external_id": f"c{i}", "phone": f"+49151123456{i:02d}"} for i in range(3)]
    add_contacts(engine, people)
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    fake_twilio.fail_next(429, times=10_000)
    for _minute in range(9):  # Twilio answers 429 from 10:00 to 10:08
        dispatcher.drain()
        engine.clock.advance(minutes=1)  # type: ignore[attr-defined]
    fake_twilio.reset()
    for _ in range(12):
        dispatcher.drain()
        engine.clock.advance(minutes=10)  # type: ignore[attr-defined]
    assert sorted(m.to for m in fake_twilio.messages()) == sorted(p["phone"] for p in people)
    with engine.db.transaction() as session:
        assert {i.state for i in session.scalars(select(Invitation))} == {InvitationState.SENT}


def test_send_window_requeues_are_not_attempts(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)  # Monday 10:00: due now, inside Monday-Thursday 09:00-12:00
    # The service runs only after the window closed, five days running: five requeues, nothing tried.
    for day in (23, 24, 25, 26, 30):
        engine.clock.set(datetime(2026, 11, day, 12, 30, tzinfo=UTC))  # type: ignore[attr-defined]
        assert dispatcher.drain().sent == 0
    assert invitation(engine).attempts == 0
    engine.clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    fake_twilio.fail_next(429)
    dispatcher.drain()
    assert invitation(engine).state is InvitationState.PLANNED  # retried, not failed for good
    engine.clock.advance(minutes=30)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert [m.to for m in fake_twilio.messages()] == [ANA["phone"]]


def test_twilios_retry_after_is_obeyed(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = fake_twilio.answer

    def with_retry_after(request: IncomingRequest) -> Reply:
        reply = answer(request)
        return (
            replace(reply, headers={**reply.headers, "Retry-After": "900"}) if reply.status == 429 else reply
        )

    monkeypatch.setattr(fake_twilio, "answer", with_retry_after)
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    fake_twilio.fail_next(429)
    dispatcher.drain()
    assert invitation(engine).due_at >= engine.clock.now() + timedelta(seconds=900)
    engine.clock.advance(minutes=10)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert fake_twilio.count() == 1  # not before Twilio said
    engine.clock.advance(minutes=6)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert [m.to for m in fake_twilio.messages()] == [ANA["phone"]]


def test_when_sms_retries_run_out_the_survey_goes_by_email(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, smtp_sink: SmtpSink
) -> None:
    add_contacts(engine, [{**ANA, "email": "ana@example.com"}])
    apply_yaml(
        engine,
        CAMPAIGN
        + "    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: '00:00', end: '23:59'}\n",
    )
    plan(engine)
    fake_twilio.fail_to(ANA["phone"], 20429)  # Twilio keeps answering 429 for this number
    for _hour in range(30):
        dispatcher.drain()
        engine.clock.advance(hours=1)  # type: ignore[attr-defined]
    assert fake_twilio.messages() == []
    [email] = smtp_sink.wait_for(1)
    assert list(email.rcpt_tos) == ["ana@example.com"]
    row = invitation(engine)
    assert (row.state, row.channel) == (InvitationState.SENT, Channel.EMAIL)


def test_with_no_channel_left_retries_last_until_the_survey_would_expire(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(
        engine,
        CAMPAIGN.replace("[sms, email]", "[sms]")
        + "    expires_after: 4d\n"
        + "    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: '00:00', end: '23:59'}\n",
    )
    plan(engine)
    fake_twilio.fail_to(ANA["phone"], 20429)
    for _hour in range(48):  # two days of 429s: still trying
        dispatcher.drain()
        engine.clock.advance(hours=1)  # type: ignore[attr-defined]
    assert invitation(engine).state is InvitationState.PLANNED
    for _hour in range(60):  # past the four days
        dispatcher.drain()
        engine.clock.advance(hours=1)  # type: ignore[attr-defined]
    row = invitation(engine)
    assert row.state is InvitationState.FAILED
    assert row.last_error and "expire" in row.last_error


ALWAYS_OPEN = "    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: '00:00', end: '23:59'}\n"


def test_a_twilio_code_we_do_not_know_is_retried_and_never_marks_the_number(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN.replace("[sms, email]", "[sms]") + ALWAYS_OPEN)
    plan(engine)
    fake_twilio.fail_to(ANA["phone"], 21999)  # a 400 with a code this version has never heard of
    with caplog.at_level(logging.WARNING):
        for _hour in range(3):
            dispatcher.drain()
            engine.clock.advance(hours=1)  # type: ignore[attr-defined]
    row = invitation(engine)
    assert row.state is InvitationState.PLANNED  # still to be sent, not undeliverable
    assert fake_twilio.count() >= 2  # tried again with back-off
    assert any("21999" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    with engine.db.transaction() as session:
        assert session.scalars(select(Consent)).all() == []  # no opt-out recorded

    fake_twilio.reset()  # whatever it was is over
    engine.clock.advance(hours=2)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert [m.to for m in fake_twilio.messages()] == [ANA["phone"]]
    assert invitation(engine).state is InvitationState.SENT


def test_a_twilio_code_we_do_not_know_is_retried_only_while_the_survey_lasts(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(
        engine,
        CAMPAIGN.replace("[sms, email]", "[sms]")
        + "    expires_after: 2d\n    remind_after: never\n"
        + ALWAYS_OPEN,
    )
    plan(engine)
    fake_twilio.fail_to(ANA["phone"], 21999)
    for _hour in range(60):
        dispatcher.drain()
        engine.clock.advance(hours=1)  # type: ignore[attr-defined]
    row = invitation(engine)
    assert row.state is InvitationState.FAILED  # given up by time, not undeliverable
    assert row.last_error and "21999" in row.last_error
