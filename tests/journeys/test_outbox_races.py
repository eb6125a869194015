"""Races between the outbox's paths: the dispatcher, reconciliation and Twilio's callbacks, for the survey and its
reminder alike.

Each test states a promise and tries to break it with the real stand-ins (fake Twilio, signed webhooks), the manual
clock, two dispatchers on one database and crashes simulated by stale claims.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.channels.sms import TwilioConfig, TwilioSms
from campaigns.dispatch.dispatcher import Dispatcher, DispatchStats
from service.container import Container
from storage.enums import Channel, ConsentStatus, InboundState, InvitationState, MessagePurpose
from storage.tables import Consent, Invitation, Message
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.smtp import SmtpSink
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed, status_callback_params

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
    return dispatcher.drain(MessagePurpose.REMINDER).sent


def set_up(engine: Container) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)


def after_the_claim_timeout(engine: Container) -> None:
    engine.clock.advance(engine.dispatch_config().claim_timeout * 2)  # type: ignore[attr-defined]


def messages(engine: Container, purpose: MessagePurpose) -> list[Message]:
    with engine.db.transaction() as session:
        return list(
            session.scalars(select(Message).where(Message.purpose == purpose).order_by(Message.id)).all()
        )


def the_invitation(engine: Container) -> Invitation:
    with engine.db.transaction() as session:
        return session.scalars(select(Invitation)).one()


def callback(app: TestClient, sid: str, status: str, error_code: int | None = None) -> None:
    params = status_callback_params(sid, status, ANA["phone"], FROM_NUMBER, error_code=error_code)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/status", params, DEFAULT_AUTH_TOKEN).status_code == 204


def impatient(engine: Container, timeout: float, worker_id: str = "impatient") -> Dispatcher:
    """A dispatcher whose Twilio adapter gives up waiting for Twilio's answer after `timeout` seconds."""
    sms = TwilioSms(
        TwilioConfig(
            account_sid=DEFAULT_ACCOUNT_SID,
            auth_token=DEFAULT_AUTH_TOKEN,
            api_url=engine.settings.twilio_api_url,
            from_number=FROM_NUMBER,
            timeout=timeout,
        )
    )
    transports = {**engine.transports, Channel.SMS: sms}
    return Dispatcher(
        engine.db, transports, clock=engine.clock, config=engine.dispatch_config(), worker_id=worker_id
    )


@pytest.fixture
def slow_worker(engine: Container) -> Iterator[Dispatcher]:
    dispatcher = impatient(engine, timeout=0.3)
    yield dispatcher
    dispatcher.close()


# --- 1. held status callbacks of a send completed from Twilio's log ----------------------------------------


def test_a_21610_callback_held_for_an_uncertain_survey_is_applied_once_the_log_check_completes_it(
    engine: Container,
    dispatcher: Dispatcher,
    slow_worker: Dispatcher,
    fake_twilio: FakeTwilio,
    app: TestClient,
) -> None:
    """The carrier's "undelivered, 21610" arrives while our send is uncertain (no SID recorded yet): it is held.
    Reconciliation then finds the survey in Twilio's log and completes it, but never applies the held callback:
    no opt-out is recorded, the survey stays `sent`, and three days later the reminder is texted to a person who
    replied STOP."""
    set_up(engine)
    fake_twilio.set_latency(1.0)  # Twilio stores the survey, its answer comes after the adapter gave up
    assert slow_worker.drain().uncertain == 1
    fake_twilio.set_latency(0)
    survey_sid = fake_twilio.messages()[0].sid
    callback(app, survey_sid, "undelivered", error_code=21610)  # held: no message has this SID yet

    after_the_claim_timeout(engine)
    dispatcher.drain()  # reconciliation completes the survey from Twilio's log
    assert messages(engine, MessagePurpose.INVITATION)[0].provider_id == survey_sid

    with engine.db.transaction() as session:
        held = session.scalars(select(Message).where(Message.purpose == MessagePurpose.STATUS_CALLBACK)).all()
        consents = session.scalars(select(Consent.status)).all()
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    remind(dispatcher)
    texted = [m.to for m in fake_twilio.messages()]
    assert texted == [ANA["phone"]], f"fake Twilio log: {texted} (the second is the reminder, after a STOP)"
    assert [row.inbound_state for row in held] == [InboundState.PROCESSED], (
        "the held callback was never applied"
    )
    assert consents == [ConsentStatus.OPTED_OUT]
    assert the_invitation(engine).state is InvitationState.UNDELIVERABLE


def test_a_callback_held_for_an_uncertain_reminder_is_applied_once_the_log_check_completes_it(
    engine: Container,
    dispatcher: Dispatcher,
    slow_worker: Dispatcher,
    fake_twilio: FakeTwilio,
    app: TestClient,
) -> None:
    """The same for the reminder: its carrier 21610 is held and lost, so the STOP is never recorded."""
    set_up(engine)
    assert dispatcher.drain().sent == 1
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    fake_twilio.set_latency(1.0)
    assert remind(slow_worker) == 0
    fake_twilio.set_latency(0)
    reminder_sid = fake_twilio.messages()[1].sid
    callback(app, reminder_sid, "undelivered", error_code=21610)
    after_the_claim_timeout(engine)
    remind(dispatcher)
    [reminder] = messages(engine, MessagePurpose.REMINDER)
    assert (reminder.provider_id, reminder.send_state) == (reminder_sid, "sent")  # completed from the log
    with engine.db.transaction() as session:
        consents = session.scalars(select(Consent.status)).all()
    assert (reminder.delivery_status, reminder.error_code) == ("undelivered", "21610")
    assert consents == [ConsentStatus.OPTED_OUT]


# --- 2. a late record overwrites what reconciliation settled -----------------------------------------------


def _uncertain_send_settled_elsewhere_meanwhile(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, purpose: MessagePurpose, nth: int
) -> str:
    """Worker A sends; Twilio stores the message and answers slowly. Meanwhile the claim goes stale and worker
    B's reconciliation finds the message in Twilio's log and completes it. Then A's adapter times out
    (uncertain) and A records its outcome. Returns the SID Twilio gave the message."""
    slow = impatient(engine, timeout=1.5, worker_id="A")
    try:
        fake_twilio.set_latency(3.0)
        worker = threading.Thread(target=slow.drain, args=(purpose,))
        worker.start()
        fake_twilio.wait_for(nth)  # the send reached Twilio (and passed A's send-by check)
        sid = fake_twilio.messages()[nth - 1].sid
        after_the_claim_timeout(engine)
        assert dispatcher.recover_stale_claims() == 1  # B: completed from Twilio's log
        [settled] = [m for m in messages(engine, purpose) if m.provider_id == sid]
        assert settled.send_state == "sent"
        worker.join()
        fake_twilio.set_latency(0)
    finally:
        slow.close()
    return sid


def test_a_late_uncertain_record_does_not_erase_the_reminder_sid_reconciliation_found(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    """A's late record takes the "settled elsewhere" branch and writes send_state=failed, provider_id=None over
    B's settlement: the reminder that went out looks failed and its SID is gone, so every status callback for it
    is held forever (here the carrier's 21610: the STOP is never recorded)."""
    set_up(engine)
    assert dispatcher.drain().sent == 1
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    sid = _uncertain_send_settled_elsewhere_meanwhile(
        engine, dispatcher, fake_twilio, MessagePurpose.REMINDER, 2
    )
    callback(app, sid, "undelivered", error_code=21610)
    [reminder] = messages(engine, MessagePurpose.REMINDER)
    with engine.db.transaction() as session:
        consents = session.scalars(select(Consent.status)).all()
    assert (reminder.provider_id, reminder.send_state) == (sid, "sent")
    assert consents == [ConsentStatus.OPTED_OUT]


def test_a_late_uncertain_record_does_not_erase_the_survey_sid_reconciliation_found(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    """The same for the survey: its message ends `failed` without SID; the carrier's "undelivered" never reaches
    the invitation, which stays `sent`, and the reminder is texted to a number the carrier refused."""
    set_up(engine)
    sid = _uncertain_send_settled_elsewhere_meanwhile(
        engine, dispatcher, fake_twilio, MessagePurpose.INVITATION, 1
    )
    callback(app, sid, "undelivered", error_code=30003)
    [survey] = messages(engine, MessagePurpose.INVITATION)
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    remind(dispatcher)
    texted = [m.to for m in fake_twilio.messages()]
    assert texted == [ANA["phone"]], (
        f"fake Twilio log: {texted} (the second is a reminder after 'undelivered')"
    )
    assert (survey.provider_id, survey.send_state) == (sid, "sent")
    assert the_invitation(engine).state is InvitationState.UNDELIVERABLE


# --- what held up: two dispatchers, a reply and a pause during a reminder's send ------------------------------


def test_two_dispatchers_draining_reminders_at_once_send_one(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    set_up(engine)
    assert dispatcher.drain().sent == 1
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    other = engine.new_dispatcher(worker_id="other-worker")
    try:
        fake_twilio.set_latency(0.5)
        threads = [threading.Thread(target=remind, args=(d,)) for d in (dispatcher, other, dispatcher, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        fake_twilio.set_latency(0)
        after_the_claim_timeout(engine)
        engine.clock.advance(days=1)  # type: ignore[attr-defined]
        assert remind(other) == 0 and remind(dispatcher) == 0
    finally:
        other.close()
    assert fake_twilio.count() == 2


def test_a_reply_while_the_reminder_is_with_twilio_is_kept_and_nothing_more_is_sent(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    set_up(engine)
    assert dispatcher.drain().sent == 1
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    fake_twilio.set_latency(1.0)
    sending = threading.Thread(target=remind, args=(dispatcher,))
    sending.start()
    fake_twilio.wait_for(2)
    reply = inbound_sms_params(ANA["phone"], FROM_NUMBER, "9")
    assert post_signed(app, f"{PUBLIC_URL}/twilio/sms", reply, DEFAULT_AUTH_TOKEN).status_code == 200
    sending.join()
    fake_twilio.set_latency(0)
    invitation = the_invitation(engine)
    assert invitation.state is InvitationState.RESPONDED and invitation.owner is None
    after_the_claim_timeout(engine)
    engine.clock.advance(days=1)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert remind(dispatcher) == 0
    assert [m.body for m in fake_twilio.messages()][
        2:
    ] == []  # nothing after the reminder (the reply is TwiML)


def test_a_reminder_claim_whose_worker_died_is_not_sent_while_the_campaign_is_paused(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    from campaigns.dispatch.dispatcher import DispatchStats
    from storage.enums import CampaignStatus
    from storage.tables import Campaign

    set_up(engine)
    assert dispatcher.drain().sent == 1
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    reminder = MessagePurpose.REMINDER
    dispatcher._prepare(
        dispatcher._claim(reminder), DispatchStats(), reminder
    )  # staged, then the worker dies
    with engine.db.transaction() as session:
        session.scalars(select(Campaign)).one().status = CampaignStatus.PAUSED
    after_the_claim_timeout(engine)
    assert remind(dispatcher) == 0
    engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert remind(dispatcher) == 0
    assert fake_twilio.count() == 1
    with engine.db.transaction() as session:
        session.scalars(select(Campaign)).one().status = CampaignStatus.ACTIVE
    assert remind(dispatcher) == 0  # a Friday: outside the Monday-Thursday window, put back to Monday
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    assert remind(dispatcher) == 1  # resumed: the one reminder goes out now
    assert remind(dispatcher) == 0
    assert fake_twilio.count() == 2


# --- a survey that may have gone out counts for the fatigue rule ------------------------------------------

PULSE = """
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [email]
"""
SUPPORT = """
  - name: support
    kind: relationship
    interval_days: 1
    channels: [email]
"""
ANA_BY_EMAIL = {"external_id": "ana", "email": "ana@example.com", "timezone": "UTC"}


def test_a_survey_held_for_review_counts_as_surveyed_for_the_fatigue_rule(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink
) -> None:
    """Nobody is surveyed twice within the fatigue window. A worker emails Ana and dies before recording it;
    reconciliation cannot ask SMTP and holds the survey for review (it may have gone out; here it did). The
    review row is neither pending nor `sent_at`, so the next campaign's planner and send-time check see a
    person never surveyed, and she gets a second survey minutes later."""
    add_contacts(engine, [ANA_BY_EMAIL])
    apply_yaml(engine, "campaigns:" + PULSE)
    plan(engine)
    [staged] = dispatcher._prepare(dispatcher._claim(), DispatchStats())
    dispatcher._send(staged)  # the email goes out; the worker dies before recording it
    smtp_sink.wait_for(1)
    engine.clock.advance(engine.dispatch_config().claim_timeout * 2)  # type: ignore[attr-defined]
    dispatcher.drain()
    with engine.db.transaction() as session:
        [first] = session.scalars(select(Invitation)).all()
        assert first.state is InvitationState.REVIEW
    apply_yaml(engine, "campaigns:" + PULSE + SUPPORT)  # the second campaign starts
    engine.clock.advance(minutes=10)  # type: ignore[attr-defined]
    plan(engine)
    dispatcher.drain()
    time.sleep(0.5)
    assert len(smtp_sink.messages()) == 1, (
        "Ana was surveyed again although her first survey may have gone out"
    )
