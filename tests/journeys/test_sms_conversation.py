"""The SMS side end to end: invitation out through fake Twilio, signed replies in, status callbacks, STOP."""

from __future__ import annotations

import html
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from twilio.twiml.messaging_response import MessagingResponse

from campaigns.dispatch.dispatcher import Dispatcher, DispatchStats
from campaigns.followups.actions import resolve
from campaigns.messages.texts import text
from service.container import Container
from service.web.app import create_app
from storage.enums import Channel, ConsentStatus, InvitationState, MessagePurpose
from storage.tables import Campaign, Consent, FollowUp, Invitation, Message, Response
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.twilio_webhooks import (
    inbound_sms_params,
    post_signed,
    post_unsigned,
    status_callback_params,
)

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""
ANA = {"external_id": "ana", "name": "Ana Lima", "phone": "+4915112345678", "properties": {"plan": "pro"}}
SMS_URL = f"{PUBLIC_URL}/twilio/sms"
STATUS_URL = f"{PUBLIC_URL}/twilio/status"


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        yield client


def reply(app: TestClient, body: str, sender: str = ANA["phone"], sid: str | None = None) -> str:
    response = post_signed(
        app, SMS_URL, inbound_sms_params(sender, FROM_NUMBER, body, sid), DEFAULT_AUTH_TOKEN
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    return response.text


def surveyed(
    engine: Container, dispatcher: Dispatcher, contact: dict[str, Any] = ANA, campaign: str = CAMPAIGN
) -> None:
    add_contacts(engine, [contact])
    apply_yaml(engine, campaign)
    plan(engine)
    assert dispatcher.drain().sent == 1


def the_response(engine: Container) -> Response:
    with engine.db.transaction() as session:
        return session.scalars(select(Response)).one()


def test_score_then_comment_then_delivered_then_stop(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    [sent] = fake_twilio.messages()

    assert "What could we do better?" in reply(app, "6")
    assert "Thank you" in reply(app, "slow support")
    response = the_response(engine)
    assert (response.score, response.category, response.comment) == (6, "detractor", "slow support")
    assert response.channel is Channel.SMS and response.late is False
    assert response.contact_snapshot == {"plan": "pro"}

    callback = status_callback_params(sent.sid, "delivered", ANA["phone"], FROM_NUMBER)
    assert post_signed(app, STATUS_URL, callback, DEFAULT_AUTH_TOKEN).status_code == 204
    with engine.db.transaction() as session:
        message = session.scalars(select(Message).where(Message.provider_id == sent.sid)).one()
        assert message.delivery_status == "delivered"
        invitation = session.scalars(select(Invitation)).one()
        assert invitation.state is InvitationState.RESPONDED  # an answer outranks the delivery report

    reply(app, "STOP")
    with engine.db.transaction() as session:
        consent = session.scalars(select(Consent)).one()
        assert (consent.channel, consent.status) == (Channel.SMS, ConsentStatus.OPTED_OUT)
    engine.clock.advance(days=200)  # type: ignore[attr-defined]
    stats = plan(engine)
    assert stats.planned == 0 and stats.skipped_by_reason == {"no_channel": 1}


def test_a_second_score_before_the_comment_replaces_the_first(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    reply(app, "9")
    reply(app, "I meant 7/10")
    assert the_response(engine).score == 7
    reply(app, "2 agents were rude to me")
    assert (the_response(engine).score, the_response(engine).comment) == (7, "2 agents were rude to me")


def test_an_unclear_reply_gets_one_clarification(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    clarification = reply(app, "7 or 8")
    assert "0" in clarification and "10" in clarification
    assert "<Message>" not in reply(app, "how about 11")  # only one clarification per survey
    assert "What would make it a 10" in reply(app, "8")


def test_a_reply_after_expiry_is_kept_and_marked_late(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    engine.clock.advance(days=20)  # type: ignore[attr-defined]
    reply(app, "10")
    assert the_response(engine).late is True


def test_a_number_we_never_surveyed_gets_a_polite_answer(app: TestClient, engine: Container) -> None:
    answer = reply(app, "9", sender="+14155550123")
    assert "<Message>" in answer
    with engine.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Response)) == 0
        assert session.execute(select(Message.inbound_state, Message.send_state)).all() == [
            ("processed", None),
            (None, "twiml"),
        ]


def test_twilio_retries_are_processed_once(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    assert "<Message>" in reply(app, "8", sid="SM" + "1" * 32)
    # Twilio retries only when it got no usable answer: the first retry gets the answer, once.
    assert "<Message>" in reply(app, "8", sid="SM" + "1" * 32)
    assert "<Message>" not in reply(app, "8", sid="SM" + "1" * 32)
    with engine.db.transaction() as session:
        inbound = session.scalars(select(Message).where(Message.direction == "inbound")).all()
        answers = session.scalars(select(Message).where(Message.reply_to_id.is_not(None))).all()
    assert len(inbound) == 1
    assert len(answers) == 1


def test_forged_or_missing_signatures_get_403_and_store_nothing(app: TestClient, engine: Container) -> None:
    params = inbound_sms_params(ANA["phone"], FROM_NUMBER, "STOP")
    assert post_unsigned(app, SMS_URL, params).status_code == 403
    assert post_signed(app, SMS_URL, params, "not-the-token").status_code == 403
    tampered = post_signed(app, SMS_URL, params, DEFAULT_AUTH_TOKEN, signature="x" * 28)
    assert tampered.status_code == 403
    callback = status_callback_params("SM" + "0" * 32, "delivered", ANA["phone"], FROM_NUMBER)
    assert post_unsigned(app, STATUS_URL, callback).status_code == 403
    with engine.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.scalar(select(func.count()).select_from(Consent)) == 0


def test_help_and_start(app: TestClient, engine: Container) -> None:
    assert "STOP" in reply(app, "HELP")
    reply(app, "stop")
    reply(app, "START")
    with engine.db.transaction() as session:
        assert session.scalars(select(Consent.status)).one() is ConsentStatus.OPTED_IN


def test_status_callbacks_are_idempotent_and_never_go_backwards(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    [sent] = fake_twilio.messages()
    for status in ("delivered", "delivered", "sent", "queued"):
        callback = status_callback_params(sent.sid, status, ANA["phone"], FROM_NUMBER)
        assert post_signed(app, STATUS_URL, callback, DEFAULT_AUTH_TOKEN).status_code == 204
    with engine.db.transaction() as session:
        assert session.scalars(select(Invitation.state)).one() is InvitationState.DELIVERED
        assert session.scalars(select(Message.delivery_status)).one() == "delivered"


def test_undelivered_marks_the_invitation(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    [sent] = fake_twilio.messages()
    callback = status_callback_params(sent.sid, "undelivered", ANA["phone"], FROM_NUMBER, error_code=30003)
    post_signed(app, STATUS_URL, callback, DEFAULT_AUTH_TOKEN)
    with engine.db.transaction() as session:
        invitation = session.scalars(select(Invitation)).one()
    assert invitation.state is InvitationState.UNDELIVERABLE
    assert invitation.last_error == "carrier reported undelivered (error 30003)"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(max_size=400))
def test_no_sms_body_causes_a_500(app: TestClient, body: str) -> None:
    response = post_signed(
        app, SMS_URL, inbound_sms_params("+4915112345678", FROM_NUMBER, body), DEFAULT_AUTH_TOKEN
    )
    assert response.status_code == 200


def random_bodies(n: int, seed: int = 7) -> list[str]:
    """Odd texts people and phones send: any code point, emoji, control characters, very long, empty."""
    rng = random.Random(seed)
    pieces = [
        "9",
        "10/10",
        "STOP",
        "nine",
        "九",
        "７",
        " ",
        "\x00",
        "\n",
        "😀",
        "<Message>",
        "&amp;",
        "'",
        '"',
        "-1",
    ]
    bodies = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.4:
            body = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        elif kind < 0.8:
            body = "".join(
                chr(rng.choice([rng.randint(32, 0x2FF), rng.randint(0x4E00, 0x9FFF), rng.randint(0, 31)]))
                for _ in range(rng.randint(0, 40))
            )
        else:
            body = "".join(chr(rng.randint(1, 0xD7FF)) for _ in range(rng.randint(100, 1600)))
        bodies.append(body)
    return bodies


@pytest.mark.parametrize("count", [500, pytest.param(10_000, marks=pytest.mark.slow)])
def test_generated_bodies_never_cause_a_500(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient, count: int
) -> None:
    # 10,000 over HTTP take minutes, so that run is in `make test-slow`; the parser alone gets far more
    # generated inputs in tests/campaigns/test_replies.py.
    surveyed(engine, dispatcher)
    statuses = Counter(
        post_signed(
            app, SMS_URL, inbound_sms_params(ANA["phone"], FROM_NUMBER, body), DEFAULT_AUTH_TOKEN
        ).status_code
        for body in random_bodies(count)
    )
    assert statuses == {200: count}


# --- the campaign's own texts -------------------------------------------------------------------------------

# A campaign that words the reason question its own way in English and the survey page's thanks in German.
OVERRIDES = """\
    messages:
      en:
        ask_comment: "Thanks {{ first_name }}! What made you give {{ company }} that score?"
        help: "{{ company }} survey: reply 0-10. Reply STOP to opt out."
      de: {page_thanks: "Vielen Dank, {{ first_name }}!"}
"""


def shipped(locale: str, key: str) -> str:
    """A catalogue text as it appears in the TwiML answer."""
    return html.escape(text(locale, key, first_name="Ana", company="Acme"), quote=False)


def test_the_campaigns_own_reply_texts_are_used(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher, campaign=CAMPAIGN + OVERRIDES)
    assert "Thanks Ana! What made you give Acme that score?" in reply(app, "6")
    assert shipped("en", "closing_detractor_contact") in reply(
        app, "slow support"
    )  # not overridden: the catalogue's
    assert "Acme survey: reply 0-10. Reply STOP to opt out." in reply(app, "HELP")
    assert the_response(engine).comment == "slow support"


def test_a_contact_in_another_language_gets_the_shipped_texts_of_it(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher, {**ANA, "locale": "de"}, CAMPAIGN + OVERRIDES)
    assert shipped("de", "follow_up_detractor") in reply(app, "6")


def test_replies_come_in_the_language_of_the_invitation(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    """A Swedish contact of a German campaign got a German SMS (nothing is shipped in Swedish), so replies are too."""
    german = CAMPAIGN.replace("brand: Acme", "brand: Acme\n    locale: de") + OVERRIDES
    surveyed(engine, dispatcher, {**ANA, "locale": "sv"}, german)
    [sent] = fake_twilio.messages()
    assert sent.body.startswith("Hallo Ana")
    assert shipped("de", "follow_up_detractor") in reply(app, "6")
    assert shipped("de", "closing_detractor_contact") in reply(app, "zu langsam")


def test_a_number_without_an_invitation_gets_the_catalogues_texts(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher, campaign=CAMPAIGN + OVERRIDES)
    answer = reply(app, "HELP", sender="+14155550123")  # nobody we know: no name, no company either
    assert html.escape(text("en", "help"), quote=False) in answer


def test_a_reason_with_a_number_in_it_is_the_comment_not_a_new_score(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    reply(app, "3")
    assert "Thank you" in reply(app, "10 minutes wait")
    assert (the_response(engine).score, the_response(engine).comment) == (3, "10 minutes wait")


def send_without_recording(engine: Container, dispatcher: Dispatcher) -> tuple[list, DispatchStats]:  # type: ignore[type-arg]
    """Claim, stage and send a batch, stopping before the dispatcher records the provider's answers."""
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    sends = dispatcher._prepare(dispatcher._claim(), DispatchStats())
    return [dispatcher._send(send) for send in sends], DispatchStats()


def test_a_status_callback_that_beats_the_dispatcher_is_applied_later(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    outcomes, stats = send_without_recording(engine, dispatcher)
    [sent] = fake_twilio.messages()
    callback = status_callback_params(sent.sid, "delivered", ANA["phone"], FROM_NUMBER)
    assert post_signed(app, STATUS_URL, callback, DEFAULT_AUTH_TOKEN).status_code == 204
    dispatcher._record(outcomes, stats)
    with engine.db.transaction() as session:
        assert session.scalars(select(Invitation.state)).one() is InvitationState.DELIVERED


def test_a_reply_that_beats_the_dispatcher_is_kept(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    outcomes, stats = send_without_recording(engine, dispatcher)
    assert "What do you like most?" in reply(app, "9")
    dispatcher._record(outcomes, stats)
    with engine.db.transaction() as session:
        invitation = session.scalars(select(Invitation)).one()
    assert invitation.state is InvitationState.RESPONDED and invitation.sent_at is not None
    assert the_response(engine).score == 9


def test_a_score_corrected_after_expiry_is_marked_late(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    """Answered in time, corrected once the survey had closed: the stored score is a late one."""
    surveyed(engine, dispatcher)
    reply(app, "9")
    assert the_response(engine).late is False
    engine.clock.advance(days=20)  # type: ignore[attr-defined]
    assert shipped("en", "thank_you_late") in reply(app, "I meant 7")
    assert (the_response(engine).score, the_response(engine).late) == (7, True)


# --- which survey a reply answers ---------------------------------------------------------------------------

# A second campaign allowed to survey Ana a day after the first (its own fatigue window), with no reminder.
OTHER = """
campaigns:
  - name: other
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    min_days_between_surveys: 1
    remind_after: never
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""


def invitation_states(engine: Container) -> dict[str, InvitationState]:
    """Each campaign's invitation state, by campaign name."""
    with engine.db.transaction() as session:
        rows = session.execute(
            select(Campaign.name, Invitation.state).join(Campaign, Invitation.campaign_id == Campaign.id)
        ).all()
    return {name: state for name, state in rows}


def answered_campaign(engine: Container) -> str:
    with engine.db.transaction() as session:
        return session.scalars(
            select(Campaign.name).join(Response, Response.campaign_id == Campaign.id)
        ).one()


def test_a_reply_while_the_next_survey_is_claimed_but_not_texted_answers_the_survey_texted(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    engine.clock.advance(days=2)  # type: ignore[attr-defined]
    apply_yaml(engine, OTHER)
    assert plan(engine).planned == 1
    staged = dispatcher._prepare(dispatcher._claim(), DispatchStats())  # claimed and staged, not texted yet
    assert "What would make it a 10" in reply(app, "8")
    assert answered_campaign(engine) == "pulse"
    outcomes = [dispatcher._send(send) for send in staged]
    dispatcher._record(outcomes, DispatchStats())
    assert invitation_states(engine) == {"pulse": InvitationState.RESPONDED, "other": InvitationState.SENT}
    assert len(fake_twilio.messages()) == 2  # the second survey went out, unanswered, as it should


def test_a_reply_to_a_reminder_answers_the_reminded_survey_not_a_newer_one(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)  # "pulse", reminded after 3 days
    engine.clock.advance(days=2)  # type: ignore[attr-defined]
    apply_yaml(engine, OTHER)
    plan(engine)
    assert dispatcher.drain().sent == 1  # "other", texted two days later
    engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert dispatcher.drain(MessagePurpose.REMINDER).sent == 1  # the reminder of "pulse", the newest text
    assert "What would make it a 10" in reply(app, "8")
    assert answered_campaign(engine) == "pulse"
    assert invitation_states(engine) == {"pulse": InvitationState.RESPONDED, "other": InvitationState.SENT}


# --- per category: the follow-up question and the closing --------------------------------------------------

LINK = "https://g.page/r/acme-review"
WITH_LINK = CAMPAIGN + f"    promoter_link: {LINK}\n"


def twiml(message: str) -> str:
    """The TwiML answer twilio's own builder makes for ``message``: what the webhook must answer exactly."""
    answer = MessagingResponse()
    answer.message(message)
    return str(answer)


def sms_text(locale: str, key: str) -> str:
    return text(locale, key, first_name="Ana", company="Acme", promoter_link=LINK)


@pytest.mark.parametrize(
    ("score", "question", "closing"),
    [
        (3, "follow_up_detractor", "closing_detractor_contact"),  # every detractor's follow-up is opened
        (7, "follow_up_passive", "closing_passive"),
        (10, "follow_up_promoter", "closing_promoter_link"),
    ],
)
@pytest.mark.parametrize("locale", ["en", "vi"])
def test_each_category_is_asked_its_question_and_closed_with_its_text(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    app: TestClient,
    score: int,
    question: str,
    closing: str,
    locale: str,
) -> None:
    surveyed(engine, dispatcher, {**ANA, "locale": locale}, WITH_LINK)
    assert reply(app, str(score)) == twiml(sms_text(locale, question))
    closed = reply(app, "the delivery")
    assert closed == twiml(sms_text(locale, closing))
    assert (LINK in closed) is (score == 10)  # the review link goes to promoters only
    assert ("get in touch" in closed) is (locale == "en" and score == 3)


def test_a_promoter_of_a_campaign_without_a_link_gets_the_plain_closing(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    reply(app, "9")
    assert reply(app, "friendly staff") == twiml(sms_text("en", "closing_promoter"))


def test_a_detractor_whose_follow_up_is_not_open_is_not_promised_a_call(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    reply(app, "2")
    with engine.db.transaction() as session:
        [follow_up] = session.scalars(select(FollowUp)).all()
    assert resolve(engine.db, follow_up.id, user="U1", note="called", method=None, now=engine.clock.now())
    closed = reply(app, "rude driver")
    assert closed == twiml(sms_text("en", "closing_detractor"))
    assert "get in touch" not in closed


PER_CATEGORY_OVERRIDES = """\
    messages:
      en:
        follow_up_promoter: "Wonderful, {{ first_name }}! What made your day?"
        closing_promoter_link: "Thanks! Tell others about {{ company }}: {{ promoter_link }}"
        closing_detractor_contact: "Sorry, {{ first_name }}. Our manager will call you today."
"""


def test_the_campaign_files_own_category_texts_win(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher, campaign=WITH_LINK + PER_CATEGORY_OVERRIDES)
    assert reply(app, "10") == twiml("Wonderful, Ana! What made your day?")
    assert reply(app, "fast") == twiml(f"Thanks! Tell others about Acme: {LINK}")


def test_a_campaigns_own_thank_you_still_serves_every_category(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    """A file written before the categories (its own ask_comment and thank_you) keeps its wording."""
    own = "    messages:\n      en: {ask_comment: 'Why, {{ first_name }}?', thank_you: 'Cheers!'}\n"
    surveyed(engine, dispatcher, campaign=CAMPAIGN + own)
    assert reply(app, "4") == twiml("Why, Ana?")
    assert reply(app, "slow") == twiml("Cheers!")


def test_an_arabic_contact_is_surveyed_answered_and_opted_out_in_arabic(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher, {**ANA, "locale": "ar"})
    [sent] = fake_twilio.messages()
    assert sent.body == sms_text("ar", "sms") and "STOP" in sent.body
    assert reply(app, "٩") == twiml(sms_text("ar", "follow_up_promoter"))
    assert reply(app, "خدمة سريعة") == twiml(sms_text("ar", "closing_promoter"))
    response = the_response(engine)
    assert (response.score, response.category, response.comment) == (9, "promoter", "خدمة سريعة")
    assert reply(app, "إيقاف") == twiml(sms_text("ar", "opted_out"))
    with engine.db.transaction() as session:
        consent = session.scalars(select(Consent)).one()
        assert (consent.channel, consent.status) == (Channel.SMS, ConsentStatus.OPTED_OUT)
    engine.clock.advance(days=200)  # type: ignore[attr-defined]
    assert plan(engine).skipped_by_reason == {"no_channel": 1}
