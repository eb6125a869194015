"""No whole phone number, email address, key, token or secret in what the service logs, tracebacks included.

The service runs under uvicorn with the logging `nps serve` gives it, and everything is logged at DEBUG through
configure_logging's own handler (tests/fixtures/logs.py), so the text read here is what an operator would read.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text

from bot import ids
from service.container import Container, build_container
from service.web.app import create_app
from storage.db import Database
from storage.tables import Contact, FollowUp, Invitation
from tests.fixtures.app import API_KEY
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, apply_yaml, plan
from tests.fixtures.logs import served
from tests.fixtures.slack import ALERTS, MANAGER, SIGNING_SECRET
from tests.fixtures.survey import csrf_of
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.slack_signing import block_actions_body, signed_headers
from tests.standins.smtp import SmtpSink
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed

REFUSAL = "contacts are read-only"


@contextmanager
def refused_contact_writes(db: Database) -> Iterator[None]:
    """The database refuses every new contact, with an error that repeats the values it was given (SQLAlchemy
    puts the statement's parameters in its message): the real path by which a 500 carries personal data."""
    sqlite = db.engine.dialect.name == "sqlite"
    with db.engine.begin() as connection:
        if sqlite:
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_contacts BEFORE INSERT ON contacts "
                    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_contacts() RETURNS trigger LANGUAGE plpgsql AS "
                    f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_contacts BEFORE INSERT ON contacts "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_contacts()"
                )
            )
    try:
        yield
    finally:
        with db.engine.begin() as connection:
            if sqlite:
                connection.execute(text("DROP TRIGGER refuse_contacts"))
            else:
                connection.execute(text("DROP TRIGGER refuse_contacts ON contacts"))
                connection.execute(text("DROP FUNCTION refuse_contacts()"))


def survey_token(container: Container, external_id: str) -> str:
    with container.db.transaction() as session:
        return session.scalars(
            select(Invitation.token)
            .join(Contact, Contact.id == Invitation.contact_id)
            .where(Contact.external_id == external_id)
        ).one()


def test_a_500_logs_its_traceback_without_the_phone_number_or_email_it_carries(
    container: Container, db: Database, service_log: io.StringIO
) -> None:
    phone, email = "+14155550166", "eve.adams@example.com"
    name = "Evangeline Quartermain"
    contact = {"external_id": "eve", "name": name, "phone": phone, "email": email}
    with served(create_app(container)) as url, refused_contact_writes(db):
        response = httpx.post(
            f"{url}/api/v1/contacts", json=contact, headers={"Authorization": f"Bearer {API_KEY}"}
        )
    assert response.status_code == 500
    assert phone not in response.text and "Traceback" not in response.text

    output = service_log.getvalue()
    assert phone not in output and phone[1:] not in output
    assert email not in output and "eve.adams" not in output
    assert "ERROR uvicorn.error: Exception in ASGI application" in output
    assert "Traceback (most recent call last)" in output and REFUSAL in output
    # The statement's parameters are not in the log at all: masking knows phones and emails, not names.
    assert name not in output and "[SQL parameters hidden" in output


# --- the log test: a representative day of the service, everything logged at DEBUG, grepped ------------------

SECRET_KEY = "nps-secret-key-for-the-log-test-0123456789"
CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms, email]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""
# Ana lives in London with her US number: her own zone sets the legal hours for texting her (10:00 there).
ANA = {
    "external_id": "ana",
    "name": "Ana Lima",
    "phone": "+14155550123",
    "email": "ana.lima@example.com",
    "timezone": "Europe/London",
}
BEN = {"external_id": "ben", "name": "Ben Okafor", "email": "ben.okafor@example.org"}
CARA = {"external_id": "cara", "name": "Cara Diaz", "phone": "+442079460958"}
DAN = {"external_id": "dan", "name": "Dan Wu", "phone": "+4915112345678", "email": "dan.wu@example.net"}
EVE = {"external_id": "eve", "name": "Eve Adams", "phone": "+33612345678", "email": "eve.adams@example.com"}


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Slack configured against the fake Slack, SMS against the fake Twilio, email against the SMTP sink."""
    return slack_engine


@pytest.mark.parametrize("service_log", ["text", "json"], indirect=True)
def test_a_day_of_the_service_logs_no_personal_data_keys_tokens_or_secrets(
    engine: Container,
    db: Database,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    smtp_sink: SmtpSink,
    service_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    container = build_container(replace(engine.settings, secret_key=SECRET_KEY), db=db, clock=engine.clock)
    api = {"Authorization": f"Bearer {API_KEY}"}
    with served(create_app(container)) as url, httpx.Client(base_url=url, timeout=10) as http:
        # Contacts through the API, and a client with a wrong key.
        for contact in (ANA, BEN, CARA, DAN):
            assert http.post("/api/v1/contacts", json=contact, headers=api).status_code == 201
        wrong_key = http.post(
            "/api/v1/contacts", json=EVE, headers={"Authorization": "Bearer wrong-key-1234"}
        )
        assert wrong_key.status_code == 401

        # Surveys by SMS and email; Dan's number is invalid (his survey falls back to email), and Twilio takes
        # Ana's message but answers 500, so its message log decides whether it went out.
        apply_yaml(container, CAMPAIGN)
        fake_twilio.fail_to(DAN["phone"], 21211)
        fake_twilio.accept_then_fail_next(500, to=ANA["phone"])
        plan(container)
        dispatcher = container.new_dispatcher(worker_id="log-test")
        try:
            dispatcher.drain()
            container.clock.advance(timedelta(minutes=10))
            dispatcher.drain()
        finally:
            dispatcher.close()
        assert {m.to for m in fake_twilio.messages()} == {ANA["phone"], CARA["phone"]}
        assert len(smtp_sink.wait_for(2)) == 2  # Ben, and Dan after his SMS failed

        # Replies: Ana is a detractor by SMS, Cara opts out, Ben answers on the survey page.
        for sender, body in (
            (ANA["phone"], "2"),
            (ANA["phone"], "nobody called me back"),
            (CARA["phone"], "STOP"),
        ):
            params = inbound_sms_params(sender, FROM_NUMBER, body)
            assert (
                post_signed(http, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN).status_code == 200
            )
        token = survey_token(container, BEN["external_id"])
        page = http.get(f"/s/{token}")
        assert page.status_code == 200
        answered = http.post(
            f"/s/{token}",
            data={"csrf": csrf_of(page.text), "step": "score", "score": "9", "comment": ""},
            follow_redirects=True,
        )
        assert answered.status_code == 200

        # The detractor alert goes to Slack; a manager acknowledges it, and a forged click is refused.
        assert container.slack is not None
        assert container.slack.poster.run() == 1
        with container.db.transaction() as session:
            follow_up = session.scalars(select(FollowUp.id)).one()
        click = block_actions_body(ids.ACK, value=str(follow_up), user_id=MANAGER, channel_id=ALERTS)
        assert (
            http.post(
                "/slack/events", content=click, headers=signed_headers(click, SIGNING_SECRET)
            ).status_code
            == 200
        )
        assert (
            http.post("/slack/events", content=click, headers=signed_headers(click, "forged")).status_code
            == 401
        )

        # A 500: the database refuses Eve, with her number and address in its error.
        with refused_contact_writes(db):
            assert http.post("/api/v1/contacts", json=EVE, headers=api).status_code == 500

    output = service_log.getvalue()
    # LOG_FORMAT=json: every line is one object, its fields masked like its message.
    if output.startswith("{"):
        entries = [json.loads(line) for line in output.splitlines()]
        assert {"time", "level", "logger", "event", "message", "fields"} <= set(entries[0])
        sent = [e for e in entries if e["event"] == "survey.sent"]
        assert sent and all("••" in e["fields"]["to"] for e in sent)
    whole = [c["phone"] for c in (ANA, CARA, DAN, EVE) if "phone" in c]
    whole += [c["phone"][1:] for c in (ANA, CARA, DAN, EVE) if "phone" in c]  # also without the +
    whole += [c["email"] for c in (ANA, BEN, DAN, EVE) if "email" in c]
    # Masking knows no names: they must not be logged at all.
    whole += [c["name"] for c in (ANA, BEN, CARA, DAN, EVE)]
    secrets = [API_KEY, "wrong-key-1234", SECRET_KEY, SIGNING_SECRET, DEFAULT_AUTH_TOKEN]
    secrets += [engine.settings.slack_bot_token or "xoxb-"]
    for value in whole + secrets:
        assert value not in output, f"{value} is in the log"
    # The day happened, and was logged: the scenario is not vacuous.
    for expected in (
        "Exception in ASGI application",
        "Slack request refused",
        "urllib3.connectionpool",  # Twilio's REST calls
        "To=%2B1••••••••23",  # Ana's number in Twilio's log lookup, masked
        "[SQL parameters hidden",  # the 500's statement, without Eve's name, number and address
    ):
        assert expected in output, expected
    # Keys, tokens and secrets are not even in the records before formatting (masking knows nothing of them).
    raw = "\n".join(record.getMessage() + "\n" + (record.exc_text or "") for record in caplog.records)
    for value in secrets:
        assert value not in raw, f"{value} was logged"
