"""The dispatcher against the fake Twilio server and the SMTP sink: what customers receive, and when."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from campaigns.contacts.consents import Cause, opt_out_address
from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.dispatch.expiry import expire_invitations
from service.container import Container
from storage.enums import (
    CampaignStatus,
    Channel,
    ConsentSource,
    ConsentStatus,
    DeliveryStatus,
    InvitationState,
    MessagePurpose,
)
from storage.tables import Campaign, Consent, Contact, Invitation, Message, Skip
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins._server import IncomingRequest, Reply
from tests.standins.fake_twilio import FakeTwilio
from tests.standins.smtp import SmtpSink

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms, email]
    brand: Acme
    remind_after: 3d
    expires_after: 14d
    messages:
      en: {sms: "Hi {{ first_name }}, how likely are you to recommend {{ company }}? Reply 0-10. {{ plan }}"}
"""

ANA = {
    "external_id": "ana",
    "name": "Ana Lima",
    "phone": "+4915112345678",
    "email": "ana@example.com",
    "timezone": "UTC",
    "properties": {"plan": "pro"},
}


def invitation(engine: Container) -> Invitation:
    with engine.db.transaction() as session:
        return session.scalars(select(Invitation)).one()


def messages(engine: Container) -> list[Message]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def test_an_invitation_is_sent_once_by_sms_with_personalised_text(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    stats = dispatcher.drain()
    assert stats.sent == 1

    [sent] = fake_twilio.wait_for(1)
    assert sent["To"] == "+4915112345678"
    assert sent["From"] == FROM_NUMBER
    # The campaign's text says nothing about opting out: the first text to the number says it.
    assert (
        sent["Body"]
        == "Hi Ana, how likely are you to recommend Acme? Reply 0-10. pro\nReply STOP to opt out."
    )
    row = invitation(engine)
    assert row.state is InvitationState.SENT
    assert row.channel is Channel.SMS
    assert row.sent_at == engine.clock.now()
    assert row.expires_at == row.sent_at + timedelta(days=14)
    assert row.reminder_due_at is not None and row.reminder_due_at >= row.sent_at + timedelta(days=3)
    [message] = messages(engine)
    assert message.provider_id == fake_twilio.messages()[0].sid
    assert message.send_state == "sent"
    assert sent["StatusCallback"] == f"{PUBLIC_URL}/twilio/status?m={message.id}"  # names our message

    assert dispatcher.drain().claimed == 0
    assert fake_twilio.count() == 1


SILENT_ABOUT_STOP = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    remind_after: 3d
    locale: fr
    messages:
      fr: {sms: "Notez-nous de 0 à 10", sms_reminder: "Rappel : notez-nous de 0 à 10"}
      en: {sms: "Rate us 0-10. Reply STOP to opt out."}
"""


def test_the_opt_out_instruction_is_appended_in_the_locale_only_to_the_first_text_to_a_number(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(
        engine,
        [{**ANA, "locale": "fr"}, {**ANA, "external_id": "bo", "phone": "+4915112345670", "locale": "en"}],
    )
    apply_yaml(engine, SILENT_ABOUT_STOP)
    plan(engine)
    assert dispatcher.drain().sent == 2
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    assert dispatcher.drain(MessagePurpose.REMINDER).sent == 2
    bodies = {(m["To"], m["Body"]) for m in fake_twilio.wait_for(4)}
    assert bodies == {
        (ANA["phone"], "Notez-nous de 0 à 10\nSTOP pour vous désabonner."),
        ("+4915112345670", "Rate us 0-10. Reply STOP to opt out."),  # says it already
        (ANA["phone"], "Rappel : notez-nous de 0 à 10"),  # the number was told
        (
            "+4915112345670",
            "Hi Ana, a quick reminder: how likely are you to recommend us? Reply 0-10. Reply STOP to opt out.",
        ),
    }


def test_a_first_text_the_carrier_did_not_deliver_leaves_the_next_one_saying_how_to_stop(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [{**ANA, "locale": "fr"}])
    apply_yaml(engine, SILENT_ABOUT_STOP)
    plan(engine)
    assert dispatcher.drain().sent == 1
    with engine.db.transaction() as session:  # Twilio's status callback: the carrier never delivered it
        session.execute(update(Message).values(delivery_status=DeliveryStatus.UNDELIVERED))
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    assert dispatcher.drain(MessagePurpose.REMINDER).sent == 1
    assert fake_twilio.wait_for(2)[1]["Body"] == "Rappel : notez-nous de 0 à 10\nSTOP pour vous désabonner."


def test_outside_the_send_window_nothing_is_sent_until_it_opens(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(
        engine,
        [
            {**ANA, "timezone": "America/Los_Angeles"},
            {"external_id": "ben", "phone": "+4915112345679", "timezone": "Europe/Berlin"},
        ],
    )
    apply_yaml(engine, CAMPAIGN)
    plan(engine)  # Monday 10:00 UTC = 02:00 in Los Angeles, 11:00 in Berlin
    with engine.db.transaction() as session:
        due = {c.timezone: i.due_at for i, c in session.execute(select(Invitation, Contact).join(Contact))}
    assert due["Europe/Berlin"] == engine.clock.now()
    assert due["America/Los_Angeles"] == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 09:00 PST

    dispatcher.drain()
    assert [m["To"] for m in fake_twilio.wait_for(1)] == ["+4915112345679"]
    engine.clock.set(datetime(2026, 11, 23, 16, 59, tzinfo=UTC))  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 0
    engine.clock.set(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 1
    assert fake_twilio.count() == 2


def test_send_window_follows_a_daylight_saving_change(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    # New York springs forward on Sunday 2026-03-08: 09:00 local is 14:00 UTC on Thursday 03-05,
    # and 13:00 UTC on Monday 03-09.
    engine.clock.set(datetime(2026, 3, 5, 16, 0, tzinfo=UTC))  # type: ignore[attr-defined]  # Thu 11:00 EST
    add_contacts(engine, [{**ANA, "timezone": "America/New_York"}])
    apply_yaml(engine, CAMPAIGN)
    engine.clock.set(datetime(2026, 3, 5, 17, 30, tzinfo=UTC))  # type: ignore[attr-defined]  # Thu 12:30 EST
    plan(engine)
    assert invitation(engine).due_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # Mon 09:00 EDT
    engine.clock.set(datetime(2026, 3, 9, 12, 59, tzinfo=UTC))  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 0
    engine.clock.set(datetime(2026, 3, 9, 13, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 1


def test_an_opt_out_between_planning_and_sending_wins(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, smtp_sink: SmtpSink
) -> None:
    add_contacts(engine, [{**ANA, "email": None}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    with engine.db.transaction() as session:
        opt_out_address(
            Channel.SMS,
            ANA["phone"],
            cause=Cause(ConsentSource.ADMIN),
            at=engine.clock.now(),
            session=session,
        )
    stats = dispatcher.drain()
    assert stats.sent == 0 and stats.cancelled == 1
    assert fake_twilio.count() == 0
    assert invitation(engine).state is InvitationState.CANCELLED
    with engine.db.transaction() as session:
        skip = session.scalars(select(Skip)).one()
    assert skip.reason == "no_channel"
    assert "unsubscribed from sms" in skip.detail


def test_an_invalid_number_falls_back_to_email(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, smtp_sink: SmtpSink
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    fake_twilio.fail_to(ANA["phone"], 21211)
    dispatcher.drain()

    [email] = smtp_sink.wait_for(1)
    assert list(email.rcpt_tos) == ["ana@example.com"]
    html = email.body("html")
    token = invitation(engine).token
    for score in range(11):
        assert f"{PUBLIC_URL}/s/{token}?score={score}" in html
    row = invitation(engine)
    assert row.state is InvitationState.SENT and row.channel is Channel.EMAIL
    assert [(m.channel, m.send_state, m.error_code) for m in messages(engine)] == [
        (Channel.SMS, "rejected", "21211"),
        (Channel.EMAIL, "sent", None),
    ]


def test_twilio_21610_records_the_opt_out(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, smtp_sink: SmtpSink
) -> None:
    add_contacts(engine, [{**ANA, "email": None}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    fake_twilio.fail_to(ANA["phone"], 21610)
    dispatcher.drain()
    assert invitation(engine).state is InvitationState.UNDELIVERABLE
    with engine.db.transaction() as session:
        consent = session.scalars(select(Consent)).one()
    assert (consent.channel, consent.address, consent.status) == (
        Channel.SMS,
        ANA["phone"],
        ConsentStatus.OPTED_OUT,
    )


def test_rate_limited_sends_are_retried_later_and_sent_once(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    fake_twilio.fail_next(429)
    stats = dispatcher.drain()
    assert stats.sent == 0 and stats.rescheduled == 1
    row = invitation(engine)
    assert row.state is InvitationState.PLANNED and row.due_at > engine.clock.now()
    engine.clock.advance(minutes=5)  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 1
    assert fake_twilio.count(successful=True) == 1


def test_service_down_for_hours_catches_up_inside_the_window(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    engine.clock.set(datetime(2026, 11, 23, 7, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    add_contacts(engine, [ANA, {**ANA, "external_id": "b", "phone": "+4915112345670", "email": None}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)  # due at 09:00 UTC
    engine.clock.set(datetime(2026, 11, 23, 11, 0, tzinfo=UTC))  # type: ignore[attr-defined]  # down 09-11
    assert dispatcher.drain().sent == 2


def test_one_reminder_to_non_responders_then_expiry(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [ANA, {**ANA, "external_id": "bo", "phone": "+4915112345670", "email": None}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    dispatcher.drain()
    with engine.db.transaction() as session:
        answered = session.scalars(select(Invitation).join(Contact).where(Contact.external_id == "bo")).one()
        answered.state, answered.responded_at = InvitationState.RESPONDED, engine.clock.now()

    engine.clock.advance(days=2)  # type: ignore[attr-defined]
    assert dispatcher.drain(MessagePurpose.REMINDER).sent == 0
    engine.clock.advance(days=1)  # type: ignore[attr-defined]  # Thursday 10:00, three days after
    assert dispatcher.drain(MessagePurpose.REMINDER).sent == 1
    assert dispatcher.drain(MessagePurpose.REMINDER).sent == 0  # only one
    reminders = [m for m in fake_twilio.wait_for(3)][2:]
    assert [r["To"] for r in reminders] == [ANA["phone"]]

    engine.clock.advance(days=11)  # type: ignore[attr-defined]
    assert expire_invitations(dispatcher) == 1
    states = {i.state for i in _all_invitations(engine)}
    assert states == {InvitationState.EXPIRED, InvitationState.RESPONDED}


def test_no_reminder_after_an_opt_out(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [{**ANA, "email": None}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    dispatcher.drain()
    with engine.db.transaction() as session:
        opt_out_address(
            Channel.SMS,
            ANA["phone"],
            cause=Cause(ConsentSource.ADMIN),
            at=engine.clock.now(),
            session=session,
        )
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    assert dispatcher.drain(MessagePurpose.REMINDER).sent == 0
    assert fake_twilio.count() == 1


def _all_invitations(engine: Container) -> list[Invitation]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(Invitation)))


def test_a_contact_without_a_time_zone_uses_the_campaigns(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [{**ANA, "timezone": None}])
    apply_yaml(engine, CAMPAIGN + "    timezone: America/Los_Angeles\n")
    plan(engine)
    assert invitation(engine).due_at == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 09:00 PST


# --- what a provider's answer means, and what is checked right before each call -------------------------


def test_a_5xx_after_twilio_accepted_the_text_is_settled_from_its_log_and_texts_the_person_once(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [{**ANA, "email": None}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    fake_twilio.accept_then_fail_next(500)  # an edge answered 500 for a message Twilio had taken
    dispatcher.drain()
    engine.clock.advance(minutes=10)  # type: ignore[attr-defined]  # past the claim timeout
    dispatcher.drain()
    dispatcher.drain()
    assert [m.to for m in fake_twilio.messages()] == [ANA["phone"]]
    assert invitation(engine).state is InvitationState.SENT


def test_a_5xx_for_a_text_twilio_never_took_is_sent_after_the_log_check(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [{**ANA, "email": None}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    fake_twilio.fail_next(500)
    dispatcher.drain()
    engine.clock.advance(minutes=10)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert [m.to for m in fake_twilio.messages()] == [ANA["phone"]]
    assert invitation(engine).state is InvitationState.SENT


BEN = {"external_id": "ben", "name": "Ben", "phone": "+4915112345679", "timezone": "UTC"}


def one_at_a_time(engine: Container) -> Dispatcher:
    """A dispatcher sending one message after the other, so a test can act while the first is in flight."""
    return Dispatcher(
        engine.db,
        engine.transports,
        clock=engine.clock,
        config=replace(engine.dispatch_config(), concurrency=1),
        worker_id="one-at-a-time",
    )


def during_first_send(fake_twilio: FakeTwilio, action: Callable[[], None]) -> None:
    """Run `action` inside the fake Twilio's handling of the first send, before it answers."""
    answer = fake_twilio.answer
    done: list[bool] = []

    def answer_after_action(request: IncomingRequest) -> Reply:
        if request.http_method == "POST" and not done:
            done.append(True)
            action()
        return answer(request)

    fake_twilio.answer = answer_after_action  # type: ignore[method-assign]


def test_a_stop_while_its_batch_is_being_sent_stops_the_queued_text(
    engine: Container, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [{**ANA, "email": None}, BEN])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)

    def ben_texts_stop() -> None:
        with engine.db.transaction() as session:
            opt_out_address(
                Channel.SMS,
                BEN["phone"],
                cause=Cause(ConsentSource.ADMIN),
                at=engine.clock.now(),
                session=session,
            )

    during_first_send(fake_twilio, ben_texts_stop)
    dispatcher = one_at_a_time(engine)
    try:
        dispatcher.drain()
    finally:
        dispatcher.close()
    assert [m.to for m in fake_twilio.messages()] == [ANA["phone"]]
    with engine.db.transaction() as session:
        ben = session.scalars(select(Invitation).join(Contact).where(Contact.external_id == "ben")).one()
        assert ben.state is InvitationState.CANCELLED


def test_a_campaign_paused_while_its_batch_is_being_sent_keeps_the_queued_text_for_later(
    engine: Container, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [{**ANA, "email": None}, BEN])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)

    def pause_the_campaign() -> None:
        with engine.db.transaction() as session:
            session.execute(update(Campaign).values(status=CampaignStatus.PAUSED))

    during_first_send(fake_twilio, pause_the_campaign)
    dispatcher = one_at_a_time(engine)
    try:
        dispatcher.drain()
        assert [m.to for m in fake_twilio.messages()] == [ANA["phone"]]
        with engine.db.transaction() as session:
            ben = session.scalars(select(Invitation).join(Contact).where(Contact.external_id == "ben")).one()
            assert (ben.state, ben.attempts) == (InvitationState.PLANNED, 0)
            session.execute(update(Campaign).values(status=CampaignStatus.ACTIVE))
        dispatcher.drain()
    finally:
        dispatcher.close()
    assert [m.to for m in fake_twilio.messages()] == [ANA["phone"], BEN["phone"]]


def test_a_text_queued_when_the_send_window_closes_waits_for_the_next_window(
    engine: Container, fake_twilio: FakeTwilio
) -> None:
    engine.clock.set(datetime(2026, 11, 23, 11, 59, 30, tzinfo=UTC))  # type: ignore[attr-defined]
    add_contacts(engine, [{**ANA, "email": None}, BEN])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    # The first text takes past noon, when Monday's 09:00-12:00 window closes.
    during_first_send(fake_twilio, lambda: engine.clock.advance(minutes=1))  # type: ignore[attr-defined]
    dispatcher = one_at_a_time(engine)
    try:
        dispatcher.drain()
    finally:
        dispatcher.close()
    assert [m.to for m in fake_twilio.messages()] == [ANA["phone"]]
    with engine.db.transaction() as session:
        ben = session.scalars(select(Invitation).join(Contact).where(Contact.external_id == "ben")).one()
        assert (ben.state, ben.due_at, ben.attempts) == (
            InvitationState.PLANNED,
            datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
            0,
        )
