"""Consent end to end: opt-out by any reasonable means, one confirmation, the ledger, Twilio's Advanced Opt-Out."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.messages.texts import text
from service.container import Container
from service.web.app import create_app
from storage.enums import Channel, ConsentSource, ConsentStatus, Direction
from storage.tables import Consent, ConsentChange, Message, Response
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed

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
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        yield client


def reply(app: TestClient, body: str, **extra: str) -> str:
    params = {**inbound_sms_params(ANA["phone"], FROM_NUMBER, body), **extra}
    response = post_signed(app, SMS_URL, params, DEFAULT_AUTH_TOKEN)
    assert response.status_code == 200
    return response.text


def surveyed(engine: Container, dispatcher: Dispatcher, contact: dict[str, Any] = ANA) -> None:
    add_contacts(engine, [contact])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == 1


def the_ledger(engine: Container) -> list[tuple[ConsentStatus, ConsentSource, str, str | None]]:
    """(status, source, detail, body of the message that caused it) for every ledger row, oldest first."""
    with engine.db.transaction() as session:
        rows = session.scalars(select(ConsentChange).order_by(ConsentChange.id)).all()
        return [
            (
                row.status,
                row.source,
                row.detail,
                session.get(Message, row.message_id).body if row.message_id else None,
            )
            for row in rows
        ]


def consent(engine: Container) -> ConsentStatus | None:
    with engine.db.transaction() as session:
        return session.scalar(select(Consent.status).where(Consent.address == ANA["phone"]))


def confirmation(locale: str) -> str:
    return html.escape(text(locale, "opted_out", company="Acme"), quote=False)


def test_a_french_arret_opts_out_with_one_confirmation_in_french_and_a_ledger_row(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher, {**ANA, "locale": "fr"})
    assert confirmation("fr") in reply(app, "ARRÊT")
    assert consent(engine) is ConsentStatus.OPTED_OUT
    assert reply(app, "STOP") == EMPTY_TWIML  # already out: recorded, not confirmed twice
    assert the_ledger(engine) == [
        (ConsentStatus.OPTED_OUT, ConsentSource.KEYWORD, "ARRET", "ARRÊT"),
        (ConsentStatus.OPTED_OUT, ConsentSource.KEYWORD, "STOP", "STOP"),
    ]
    engine.clock.advance(days=200)  # type: ignore[attr-defined]
    assert plan(engine).planned == 0


def test_stop_texting_me_after_the_score_opts_out_instead_of_being_the_comment(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    reply(app, "3")
    assert confirmation("en") in reply(app, "Stop texting me")
    with engine.db.transaction() as session:
        assert session.scalars(select(Response.comment)).one() is None
    assert the_ledger(engine) == [
        (ConsentStatus.OPTED_OUT, ConsentSource.FREE_TEXT, "STOP TEXTING", "Stop texting me"),
    ]


def test_stop_inside_a_product_comment_stays_the_comment(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    reply(app, "4")
    reply(app, "the app won't stop crashing")
    with engine.db.transaction() as session:
        assert session.scalars(select(Response.comment)).one() == "the app won't stop crashing"
    assert consent(engine) is None and the_ledger(engine) == []


def test_with_twilio_advanced_opt_out_the_change_is_recorded_and_we_stay_silent(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher)
    assert reply(app, "STOP", OptOutType="STOP") == EMPTY_TWIML
    assert consent(engine) is ConsentStatus.OPTED_OUT
    assert reply(app, "HELP", OptOutType="HELP") == EMPTY_TWIML
    assert reply(app, "START", OptOutType="START") == EMPTY_TWIML
    assert consent(engine) is ConsentStatus.OPTED_IN
    assert the_ledger(engine) == [
        (ConsentStatus.OPTED_OUT, ConsentSource.KEYWORD, "STOP (Twilio Advanced Opt-Out)", "STOP"),
        (ConsentStatus.OPTED_IN, ConsentSource.KEYWORD, "START (Twilio Advanced Opt-Out)", "START"),
    ]
    with engine.db.transaction() as session:
        answers = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).all()
        assert [answer.purpose for answer in answers] == ["invitation"]  # no text of ours after the survey


def test_a_keyword_twilio_does_not_know_is_ours_to_confirm_even_with_advanced_opt_out(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    surveyed(engine, dispatcher, {**ANA, "locale": "de"})
    assert confirmation("de") in reply(app, "STOPP")  # no OptOutType: Twilio did not answer it
    assert consent(engine) is ConsentStatus.OPTED_OUT


def test_a_21610_refusal_is_in_the_ledger_with_the_refused_message(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_to(ANA["phone"], 21610)
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    dispatcher.drain()
    [(status, source, detail, body)] = the_ledger(engine)
    assert (status, source, detail) == (ConsentStatus.OPTED_OUT, ConsentSource.TWILIO_21610, "twilio-21610")
    assert body is not None and "0-10" in body
    with engine.db.transaction() as session:
        assert session.scalars(select(Consent.channel)).one() is Channel.SMS
