"""A claim whose worker died is settled from the evidence, never by blindly sending again."""

from __future__ import annotations

from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher, DispatchStats
from service.container import Container
from storage.enums import InvitationState
from storage.tables import Invitation, Message
from tests.fixtures.engine import add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import FakeTwilio
from tests.standins.smtp import SmtpSink

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [{channel}]
"""
ANA = {"external_id": "ana", "phone": "+4915112345678", "email": "ana@example.com", "timezone": "UTC"}


def crash_after_prepare(engine: Container, dispatcher: Dispatcher, channel: str = "sms") -> list:  # type: ignore[type-arg]
    """Claim and stage like a worker would, then "die": nothing is recorded."""
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN.format(channel=channel))
    plan(engine)
    return dispatcher._prepare(dispatcher._claim(), DispatchStats())


def only_invitation(engine: Container) -> Invitation:
    with engine.db.transaction() as session:
        return session.scalars(select(Invitation)).one()


def after_the_claim_timeout(engine: Container) -> None:
    engine.clock.advance(engine.dispatch_config().claim_timeout * 2)  # type: ignore[attr-defined]


def test_a_fresh_claim_is_left_alone(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    crash_after_prepare(engine, dispatcher)
    assert dispatcher.recover_stale_claims() == 0
    assert only_invitation(engine).state is InvitationState.CLAIMED


def test_a_send_twilio_received_is_completed_not_repeated(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    [staged] = crash_after_prepare(engine, dispatcher)
    dispatcher.transports[staged.outgoing.channel].send(
        staged.outgoing
    )  # reached Twilio; the answer was lost
    after_the_claim_timeout(engine)
    dispatcher.drain()
    assert fake_twilio.count() == 1
    invitation = only_invitation(engine)
    assert invitation.state is InvitationState.SENT
    assert invitation.last_error == "completed from the provider's log after the worker stopped"
    with engine.db.transaction() as session:
        message = session.scalars(select(Message)).one()
    assert message.provider_id == fake_twilio.messages()[0].sid


def test_a_send_twilio_never_received_is_sent_once(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    crash_after_prepare(engine, dispatcher)
    after_the_claim_timeout(engine)
    dispatcher.drain()
    assert fake_twilio.count() == 1
    assert only_invitation(engine).state is InvitationState.SENT
    with engine.db.transaction() as session:
        statuses = session.scalars(select(Message.send_state).order_by(Message.id)).all()
    assert statuses == ["not_sent", "sent"]


def test_an_email_that_may_have_gone_out_is_held_for_review(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink
) -> None:
    crash_after_prepare(engine, dispatcher, channel="email")
    after_the_claim_timeout(engine)
    dispatcher.drain()
    invitation = only_invitation(engine)
    assert invitation.state is InvitationState.REVIEW
    assert "held for review" in (invitation.last_error or "")
    assert smtp_sink.messages() == []


def test_a_claim_that_staged_nothing_is_requeued(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN.format(channel="sms"))
    plan(engine)
    dispatcher._claim()  # died right after claiming
    after_the_claim_timeout(engine)
    assert dispatcher.recover_stale_claims() == 1
    invitation = only_invitation(engine)
    assert invitation.state is InvitationState.PLANNED
    assert invitation.last_error == "claim expired before anything was sent; requeued"
