"""Races and provider answers on the send path: channel pauses, their probe, and Twilio errors about our own setup."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.channels.base import Outgoing, Transport
from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from storage.enums import Channel, InvitationState
from storage.tables import ChannelPause, Invitation, Response
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed

SMS_CAMPAIGN = """
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
EMAIL_CAMPAIGN = """
campaigns:
  - name: mailpulse
    kind: relationship
    interval_days: 1
    channels: [email]
    brand: Acme
    expires_after: 14d
"""
ANA = {"external_id": "ana", "name": "Ana Lima", "phone": "+4915112345678", "timezone": "UTC"}
PEOPLE = [
    {
        "external_id": f"p{i}",
        "name": f"Person {i}",
        "phone": f"+491511234560{i}",
        "email": f"p{i}@example.org",
        "timezone": "UTC",
    }
    for i in range(3)
]


def invitations(engine: Container) -> list[Invitation]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(Invitation).order_by(Invitation.id)).all())


def pauses(engine: Container) -> list[ChannelPause]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(ChannelPause)).all())


def reply(app: TestClient, body: str, phone: str = ANA["phone"]):  # type: ignore[no-untyped-def]
    params = inbound_sms_params(phone, FROM_NUMBER, body)
    return post_signed(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN)


class Hooked:
    """A transport that runs `before` and/or `after` around the real provider call."""

    def __init__(self, real: Transport, before=None, after=None) -> None:  # type: ignore[no-untyped-def]
        self.real = real
        self.channel = real.channel
        self.name = real.name
        self.before, self.after = before, after

    def send(self, message: Outgoing) -> str:
        if self.before:
            self.before(message)
        sid = self.real.send(message)
        if self.after:
            self.after(message, sid)
        return sid

    def find_sent(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self.real.find_sent(*args, **kwargs)


def dispatcher_with(engine: Container, worker_id: str, sms: Transport, **config: object) -> Dispatcher:
    transports = {**engine.transports, Channel.SMS: sms}
    cfg = dataclasses.replace(engine.dispatch_config(), **config)
    return Dispatcher(engine.db, transports, clock=engine.clock, config=cfg, worker_id=worker_id)


# --- A1. sender/account-level Twilio errors outside the short list burn the outbox --------------------------


@pytest.mark.parametrize("code", [21603, 21701, 21703])
def test_a_sender_level_twilio_error_pauses_sms_and_keeps_every_invitation(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, code: int
) -> None:
    """21603 ("A 'From' phone number is required") and the Messaging Service errors are our sender's setup and say
    nothing about the person: SMS pauses and every due invitation stays planned for when it is fixed."""
    add_contacts(engine, PEOPLE)
    apply_yaml(engine, SMS_CAMPAIGN)
    plan(engine)
    fake_twilio.fail_next(code, times=len(PEOPLE))
    dispatcher.drain()
    states = [i.state for i in invitations(engine)]
    assert states == [InvitationState.PLANNED] * len(PEOPLE) and [p.channel for p in pauses(engine)] == [
        Channel.SMS
    ], f"Twilio {code} (setup, not the person): invitations {states}, pauses {pauses(engine)}"


def test_a_country_the_account_may_not_text_keeps_the_invitation_without_pausing_sms(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    """21408: the account's Geo Permissions do not include the recipient's country. That is about our account,
    but only for that country: pausing all SMS would stop every other country too. The send is tried again later
    (and, when retries run out, the next channel), never marked undeliverable for the person."""
    add_contacts(engine, PEOPLE)
    apply_yaml(engine, SMS_CAMPAIGN)
    plan(engine)
    fake_twilio.fail_next(21408, to=PEOPLE[0]["phone"])
    dispatcher.drain()
    states = [i.state for i in invitations(engine)]
    assert states[0] is InvitationState.PLANNED and pauses(engine) == []
    assert fake_twilio.count(successful=True) == len(PEOPLE) - 1


# --- A5. two probes for one elapsed pause -------------------------------------------------------------------


def test_one_probe_for_one_elapsed_pause_even_when_the_probe_leaves_late(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    """A prepared probe may leave up to half the claim timeout later (the rate limit, a slow batch): a second worker
    preparing meanwhile must not find the pause elapsed and probe too (two probe texts, the pause extended twice)."""
    add_contacts(engine, PEOPLE)
    apply_yaml(engine, SMS_CAMPAIGN)
    plan(engine)
    fake_twilio.fail_next(20003, times=10)  # the token was rotated
    dispatcher.drain()
    assert [p.channel for p in pauses(engine)] == [Channel.SMS]
    before = fake_twilio.count()  # the batch's sends already under way when 20003 came back
    engine.clock.advance(seconds=61)  # type: ignore[attr-defined]  # the pause has elapsed: one probe is due

    entered, release = threading.Event(), threading.Event()

    def queued_behind_the_rate_limit(message: Outgoing) -> None:
        entered.set()
        assert release.wait(10)

    real_sms = engine.transports[Channel.SMS]
    slow = dispatcher_with(
        engine, "worker-a", Hooked(real_sms, before=queued_behind_the_rate_limit), batch_size=1
    )
    other = dispatcher_with(engine, "worker-b", real_sms)
    try:
        batch = threading.Thread(target=slow.run_batch)
        batch.start()
        assert entered.wait(10)  # worker A took the probe and is about to send it
        engine.clock.advance(seconds=61)  # type: ignore[attr-defined]  # still within A's claim (150 s)
        other.run_batch()  # worker B prepares: the pause looks elapsed again
        release.set()
        batch.join(10)
    finally:
        release.set()
        slow.close()
        other.close()
    probes = fake_twilio.count() - before
    assert probes == 1, f"{probes} probe sends reached Twilio for one elapsed pause (pause: {pauses(engine)})"


# --- a reply that beats the record step ------------------------------------------------------------------


def test_a_reply_to_a_text_twilio_accepted_but_not_yet_recorded_answers_it_not_last_seasons_survey(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    """The record step runs after the whole batch, so a fast reply to the first text of a batch arrives while its
    message row is still `sending`. Last season's survey, closed long ago, must not take the score: the person is
    answering the text in flight."""
    add_contacts(engine, [ANA])
    apply_yaml(engine, SMS_CAMPAIGN)
    plan(engine)
    dispatcher.drain()  # last season's survey, sent and never answered
    engine.clock.advance(weeks=14)  # type: ignore[attr-defined]  # a Monday 10:00 again
    plan(engine)
    new = [i for i in invitations(engine) if i.state is InvitationState.PLANNED]
    assert len(new) == 1, [i.state for i in invitations(engine)]

    answers: list[str] = []

    def the_person_answers_at_once(message: Outgoing, sid: str) -> None:
        answers.append(reply(app, "9").text)  # Twilio accepted; its HTTP answer is still on its way back

    fast = dispatcher_with(
        engine, "fast-reply", Hooked(engine.transports[Channel.SMS], after=the_person_answers_at_once)
    )
    try:
        assert fast.drain().sent == 1
    finally:
        fast.close()
    with engine.db.transaction() as session:
        credited = session.scalars(select(Response.invitation_id)).all()
    assert credited == [new[0].id], (
        f"the score went to invitation(s) {credited}, not the survey just texted ({new[0].id}); "
        f"the person was told {answers}"
    )
