"""Exactly once, attacked from outside: late SMS answers, reconciliation by Twilio's log, SMTP refusals.

Each test is a way found to make a person get an answer never, a survey never, or to burn every address
because of our own setup. They fail on the code they were written against.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.replies.inbound import (
    ANSWER_IN_TWIML_WITHIN,
    claim_reply,
    handle_claimed,
    new_owner,
    store_reply,
    sweep_inbound,
)
from service.container import Container
from tests.fixtures.engine import FROM_NUMBER, add_contacts, apply_yaml, plan
from tests.service.web.test_twilio import ASK, CAMPAIGN, answers_texted, post, twiml_text
from tests.standins.fake_twilio import FakeTwilio
from tests.standins.twilio_webhooks import inbound_sms_params, new_message_sid

ANA = "+4915112345678"


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    from service.web.app import create_app

    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def surveyed(engine: Container, dispatcher: Dispatcher) -> None:
    add_contacts(engine, [{"external_id": "ana", "name": "Ana Lima", "phone": ANA}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == 1


# --- (a) an answer committed for TwiML that never reached Twilio ---------------------------------------------


def test_an_answer_committed_for_twiml_whose_webhook_died_before_answering_reaches_the_person(
    engine: Container, app: TestClient, surveyed: None, fake_twilio: FakeTwilio
) -> None:
    """The webhook commits the answer as ``twiml`` and its process dies before the HTTP answer is written.

    Twilio got no usable answer, so it retries (a failed connection is what Twilio retries). The retry finds the
    reply processed and its answer in ``twiml`` (not ``late_twiml``), so it answers with empty TwiML; the sweeper
    texts only ``late_twiml`` answers. Nobody ever sends "What is the main reason...": the person's answer is
    lost although it is stored as given. A retry proves the earlier TwiML did not reach Twilio.
    """
    sid = new_message_sid()
    params = inbound_sms_params(ANA, FROM_NUMBER, "9", sid)
    # What POST /twilio/sms does up to its commit; then the process is killed.
    arrived = engine.clock.now()
    message_id = store_reply(engine.db, sid=sid, sender=ANA, body="9", raw=params, now=arrived)
    owner = new_owner("webhook")
    assert claim_reply(engine.db, message_id, owner=owner, now=arrived)
    handled = handle_claimed(
        engine.db, message_id, owner=owner, clock=engine.clock, answer_by=arrived + ANSWER_IN_TWIML_WITHIN
    )
    assert handled is not None and handled.twiml is not None  # committed for a TwiML that was never written

    retried = post(app, "9", sid)  # Twilio's retry, within the time it could still take an answer
    engine.clock.advance(minutes=5)  # type: ignore[attr-defined]
    sweep_inbound(engine.db, engine.transports, clock=engine.clock)
    got = ([twiml_text(retried)] if twiml_text(retried) else []) + [
        body for _, body in answers_texted(fake_twilio)
    ]
    assert got == [ASK]
