"""Reminders go through the dispatcher's own path: failures, opt-outs, held callbacks and reconciliation alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.channels.sms import TwilioConfig, TwilioSms
from campaigns.dispatch.dispatcher import Dispatcher, DispatchStats
from service.container import Container
from storage.enums import Channel, ConsentStatus, InvitationState, MessagePurpose
from storage.tables import Consent, Invitation, Message
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.smtp import SmtpSink
from tests.standins.twilio_webhooks import post_signed, status_callback_params

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    remind_after: 3d
    expires_after: 14d
    messages:
      en: {sms: "Hi {{ first_name }}, how likely are you to recommend {{ company }}? Reply 0-10."}
"""
ANA = {"external_id": "ana", "name": "Ana Lima", "phone": "+4915112345678", "timezone": "UTC"}


def remind(dispatcher: Dispatcher) -> int:
    """One reminder run, as the scheduler's job does it; how many reminders went out."""
    return dispatcher.drain(MessagePurpose.REMINDER).sent


def surveyed_three_days_ago(engine: Container, dispatcher: Dispatcher, channel: str = "sms") -> None:
    add_contacts(engine, [{**ANA, "email": "ana@example.com"}])
    apply_yaml(engine, CAMPAIGN.replace("[sms]", f"[{channel}]"))
    plan(engine)
    assert dispatcher.drain().sent == 1
    engine.clock.advance(days=3)  # type: ignore[attr-defined]


def the_reminder(engine: Container) -> Message:
    with engine.db.transaction() as session:
        return session.scalars(select(Message).where(Message.purpose == MessagePurpose.REMINDER)).one()


def the_invitation(engine: Container) -> Invitation:
    with engine.db.transaction() as session:
        return session.scalars(select(Invitation)).one()


def test_a_reminder_rejected_for_good_is_recorded_like_an_invitation_and_not_retried(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    surveyed_three_days_ago(engine, dispatcher)
    fake_twilio.fail_next(21211)
    assert remind(dispatcher) == 0
    reminder = the_reminder(engine)
    assert (reminder.send_state, reminder.error_code) == ("rejected", "21211")
    assert the_invitation(engine).reminder_due_at is None
    engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert remind(dispatcher) == 0
    assert fake_twilio.count() == 2  # the invitation and the one rejected reminder


def test_twilio_21610_on_a_reminder_records_the_opt_out(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    surveyed_three_days_ago(engine, dispatcher)
    fake_twilio.fail_next(21610)
    assert remind(dispatcher) == 0
    with engine.db.transaction() as session:
        consent = session.scalars(select(Consent)).one()
    assert (consent.channel, consent.address, consent.status) == (
        Channel.SMS,
        ANA["phone"],
        ConsentStatus.OPTED_OUT,
    )


def test_a_status_callback_that_beats_the_reminders_record_is_applied(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed_three_days_ago(engine, dispatcher)
    fake_twilio.set_latency(1.0)  # Twilio stores the reminder, then answers slowly
    sending = threading.Thread(target=remind, args=(dispatcher,))
    sending.start()
    fake_twilio.wait_for(2)
    reminder_sid = fake_twilio.messages()[1].sid
    callback = status_callback_params(reminder_sid, "delivered", ANA["phone"], FROM_NUMBER)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/status", callback, DEFAULT_AUTH_TOKEN).status_code == 204
    sending.join()
    reminder = the_reminder(engine)
    assert (reminder.provider_id, reminder.send_state, reminder.delivery_status) == (
        reminder_sid,
        "sent",
        "delivered",
    )


@pytest.fixture
def impatient_dispatcher(engine: Container) -> Iterator[Dispatcher]:
    """A dispatcher whose Twilio adapter stops waiting for an answer after a fraction of a second."""
    impatient = TwilioSms(
        TwilioConfig(
            account_sid=DEFAULT_ACCOUNT_SID,
            auth_token=DEFAULT_AUTH_TOKEN,
            api_url=engine.settings.twilio_api_url,
            from_number=FROM_NUMBER,
            timeout=0.3,
        )
    )
    transports = {**engine.transports, Channel.SMS: impatient}
    dispatcher = Dispatcher(
        engine.db, transports, clock=engine.clock, config=engine.dispatch_config(), worker_id="impatient"
    )
    yield dispatcher
    dispatcher.close()


def test_an_uncertain_reminder_is_settled_from_twilios_log_without_a_second_text(
    engine: Container, dispatcher: Dispatcher, impatient_dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    surveyed_three_days_ago(engine, dispatcher)
    fake_twilio.set_latency(1.0)  # Twilio accepts the reminder, the answer comes too late
    assert remind(impatient_dispatcher) == 0
    fake_twilio.set_latency(0)
    engine.clock.advance(engine.dispatch_config().claim_timeout * 2)  # type: ignore[attr-defined]
    remind(dispatcher)
    assert fake_twilio.count() == 2
    reminder = the_reminder(engine)
    assert (reminder.provider_id, reminder.send_state) == (fake_twilio.messages()[1].sid, "sent")


def crash_after_staging_the_reminder(engine: Container, dispatcher: Dispatcher) -> list:  # type: ignore[type-arg]
    """Claim and stage a reminder like a worker would, then "die": nothing is recorded."""
    reminder = MessagePurpose.REMINDER
    return dispatcher._prepare(dispatcher._claim(reminder), DispatchStats(), reminder)


def after_the_claim_timeout(engine: Container) -> None:
    engine.clock.advance(engine.dispatch_config().claim_timeout * 2)  # type: ignore[attr-defined]


def test_a_reminder_twilio_received_before_its_worker_died_is_completed_not_repeated(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    surveyed_three_days_ago(engine, dispatcher)
    [staged] = crash_after_staging_the_reminder(engine, dispatcher)
    dispatcher.transports[staged.outgoing.channel].send(
        staged.outgoing
    )  # reached Twilio; the answer was lost
    after_the_claim_timeout(engine)
    assert remind(dispatcher) == 0
    assert fake_twilio.count() == 2
    reminder = the_reminder(engine)
    assert (reminder.provider_id, reminder.send_state) == (fake_twilio.messages()[1].sid, "sent")
    assert the_invitation(engine).owner is None


def test_a_reminder_twilio_never_received_is_sent_once(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    surveyed_three_days_ago(engine, dispatcher)
    crash_after_staging_the_reminder(engine, dispatcher)
    after_the_claim_timeout(engine)
    assert remind(dispatcher) == 1
    assert fake_twilio.count() == 2
    with engine.db.transaction() as session:
        states = session.scalars(
            select(Message.send_state).where(Message.purpose == MessagePurpose.REMINDER).order_by(Message.id)
        ).all()
    assert states == ["not_sent", "sent"]
    assert remind(dispatcher) == 0


def test_an_email_reminder_that_may_have_gone_out_is_not_repeated(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink
) -> None:
    surveyed_three_days_ago(engine, dispatcher, channel="email")
    crash_after_staging_the_reminder(engine, dispatcher)
    after_the_claim_timeout(engine)
    assert remind(dispatcher) == 0
    engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert remind(dispatcher) == 0
    assert len(smtp_sink.messages()) == 1  # the survey; the reminder may or may not have gone out
    invitation = the_invitation(engine)
    assert invitation.state is InvitationState.SENT  # still answerable
    assert "the reminder is not sent again" in (invitation.last_error or "")


def test_a_reminder_the_carrier_refused_with_21610_records_the_opt_out_and_leaves_the_survey_open(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed_three_days_ago(engine, dispatcher)
    assert remind(dispatcher) == 1
    reminder_sid = fake_twilio.messages()[1].sid
    callback = status_callback_params(
        reminder_sid, "undelivered", ANA["phone"], FROM_NUMBER, error_code=21610
    )
    assert post_signed(app, f"{PUBLIC_URL}/twilio/status", callback, DEFAULT_AUTH_TOKEN).status_code == 204
    with engine.db.transaction() as session:
        assert session.scalars(select(Consent.status)).one() is ConsentStatus.OPTED_OUT
    assert the_reminder(engine).delivery_status == "undelivered"
    assert the_invitation(engine).state is InvitationState.SENT
