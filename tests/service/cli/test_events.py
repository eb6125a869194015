"""`nps events`: the story of a survey round trip from the database, masked unless asked, followable."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import update

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.followups.actions import acknowledge
from campaigns.timeline import Filters
from service.cli import cli
from service.cli.events import poll
from service.container import Container
from service.web.app import create_app
from storage.enums import InvitationState
from storage.tables import Invitation
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.fixtures.slack import MANAGER
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed, status_callback_params

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""
ANA = {"external_id": "ana", "name": "Ana Lima", "phone": "+4915112345678", "timezone": "UTC"}
EMAIL_ID = "ana.lima@example.com"  # CRMs commonly key their customers by email address


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        yield client


def nps(database_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": database_url, **(env or {})}
    )


def reply(app: TestClient, body: str) -> None:
    params = inbound_sms_params(ANA["phone"], FROM_NUMBER, body)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN).status_code == 200


def round_trip(engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio) -> None:
    """A survey sent and delivered, a detractor's score and comment, the alert posted, an acknowledgement, STOP."""
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == 1
    engine.clock.advance(minutes=1)  # type: ignore[attr-defined]
    callback = status_callback_params(fake_twilio.messages()[0].sid, "delivered", ANA["phone"], FROM_NUMBER)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/status", callback, DEFAULT_AUTH_TOKEN).status_code == 204
    engine.clock.advance(minutes=1)  # type: ignore[attr-defined]
    reply(app, "3")
    engine.clock.advance(minutes=1)  # type: ignore[attr-defined]
    reply(app, "nobody called me back")
    assert engine.slack is not None and engine.slack.poster.run() == 1
    engine.clock.advance(minutes=1)  # type: ignore[attr-defined]
    assert acknowledge(engine.db, 1, user=MANAGER, now=engine.clock.now())
    engine.clock.advance(minutes=1)  # type: ignore[attr-defined]
    reply(app, "STOP")


def events_of(result: Result) -> list[str]:
    """Each line's words, without its time."""
    assert result.exit_code == 0, result.output
    return [line[21:] for line in result.stdout.splitlines()]


def test_a_round_trip_reads_in_time_order_and_masked(
    database_url: str, engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    round_trip(engine, dispatcher, app, fake_twilio)
    lines = events_of(nps(database_url, "events", "--contact", "ana"))
    starts = [line.split(":")[0] for line in lines]
    assert starts[:5] == [
        "survey planned",
        "survey message by sms",
        "survey sent",
        "survey delivered",
        "sms received",
    ]
    for expected in (
        "reply recorded",
        "comment recorded",
        "follow-up opened",
        "Slack alert queued",
        "Slack alert posted",
        "follow-up acknowledged",
        "audit",
        "opted out",
        "answer to the person by sms",
    ):
        assert expected in starts, (expected, starts)
    assert (
        starts.index("survey delivered") < starts.index("reply recorded") < starts.index("comment recorded")
    )
    assert starts.index("reply recorded") < starts.index("answer to the person by sms")
    assert starts.index("follow-up acknowledged") < starts.index("opted out")
    output = "\n".join(lines)
    assert "campaign=pulse" in output and "contact=ana" in output
    assert "score 3 (detractor)" in output
    assert "delivery=delivered" in output
    for personal in (ANA["phone"], ANA["name"], "nobody called me back"):
        assert personal not in output
    assert "+4••••••••••78" in output and "(21 characters; --show-personal-data shows them)" in output


def test_personal_data_is_shown_when_asked(
    database_url: str, engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    round_trip(engine, dispatcher, app, fake_twilio)
    output = nps(database_url, "events", "--contact", "ana", "--show-personal-data").stdout
    assert ANA["phone"] in output and "ana (Ana Lima)" in output and "nobody called me back" in output


def test_json_lines_parse_and_a_time_range_narrows_them(
    database_url: str, engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    round_trip(engine, dispatcher, app, fake_twilio)
    result = nps(database_url, "events", "--campaign", "pulse", "--since", "2026-11-23", "--json")
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"time", "event", "text", "fields"} <= set(entries[0])
    sent = [e for e in entries if e["event"] == "survey.sent"]
    assert sent[0]["fields"]["campaign"] == "pulse" and sent[0]["fields"]["channel"] == "sms"
    narrow = nps(
        database_url, "events", "--since", "2026-11-23T10:02", "--until", "2026-11-23T10:03", "--json"
    )
    kinds = [json.loads(line)["event"] for line in narrow.stdout.splitlines()]
    assert "reply" in kinds and "survey.sent" not in kinds and "consent" not in kinds


def test_an_unknown_contact_or_a_bad_time_is_one_line(database_url: str, db: object) -> None:
    result = nps(database_url, "events", "--contact", "nobody")
    assert result.exit_code == 1 and result.stderr.strip() == "Error: no contact with the id 'nobody'"
    result = nps(database_url, "events", "--since", "yesterday-ish")
    assert result.exit_code == 2 and "30m, 2h, 7d" in result.stderr


def test_follow_prints_only_what_is_new(
    database_url: str, engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    seen: set[str] = set()
    filters = Filters(contact="ana")
    first = poll(engine.db, filters, seen, show_personal=False)
    assert [e.event for e in first] == ["survey.planned"]
    assert poll(engine.db, filters, seen, show_personal=False) == []
    dispatcher.drain()
    assert [e.event for e in poll(engine.db, filters, seen, show_personal=False)] == [
        "message.out",
        "survey.sent",
    ]
    # The command itself, bounded: it prints the story once and stops after --max-seconds.
    result = nps(
        database_url, "events", "--contact", "ana", "--follow", "--interval", "0.1", "--max-seconds", "0.3"
    )
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 3


def test_half_a_channel_configuration_stops_a_command_in_one_line(database_url: str, db: object) -> None:
    result = nps(database_url, "events", env={"TWILIO_FROM_NUMBER": "+15005550006"})
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "TWILIO_ACCOUNT_SID" in result.stderr
    assert "Traceback" not in result.output


def test_events_json_masks_an_email_used_as_external_id(database_url: str, engine: Container) -> None:
    """The text line masks `contact=a•••@example.com`; `--json` writes `fields` masked the same way."""
    add_contacts(engine, [{**ANA, "external_id": EMAIL_ID}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    text_out = nps(database_url, "events", "--contact", EMAIL_ID)
    assert text_out.exit_code == 0, text_out.output
    assert EMAIL_ID not in text_out.stdout
    json_out = nps(database_url, "events", "--contact", EMAIL_ID, "--json")
    assert json_out.exit_code == 0, json_out.output
    assert EMAIL_ID not in json_out.stdout, json_out.stdout


def test_events_json_masks_addresses_in_a_provider_error(database_url: str, engine: Container) -> None:
    """`why=` (Invitation.last_error, the provider's own words) is masked in the text and in --json fields."""
    add_contacts(engine, [{**ANA, "external_id": "ana"}])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    error = "550 5.1.1 <ana.lima@example.com>: Recipient address rejected; also tried +4915112345678"
    with engine.db.transaction() as session:
        session.execute(update(Invitation).values(state=InvitationState.FAILED, last_error=error))
    text_out = nps(database_url, "events", "--contact", "ana")
    assert text_out.exit_code == 0, text_out.output
    assert "ana.lima@example.com" not in text_out.stdout and "+4915112345678" not in text_out.stdout
    json_out = nps(database_url, "events", "--contact", "ana", "--json")
    assert json_out.exit_code == 0, json_out.output
    assert "ana.lima@example.com" not in json_out.stdout, json_out.stdout
    assert "+4915112345678" not in json_out.stdout, json_out.stdout


@pytest.mark.parametrize("since", ["99999999d", "9999999999999w"])
def test_events_since_too_far_back_fails_in_one_line(database_url: str, since: str) -> None:
    """A time ago before the first representable date is a usage error, not an OverflowError traceback."""
    result = nps(database_url, "events", "--since", since)
    assert result.exit_code in (1, 2), result.output
    assert not isinstance(result.exception, OverflowError), repr(result.exception)
    assert "Traceback" not in result.output
