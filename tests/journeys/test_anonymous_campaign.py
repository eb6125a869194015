"""eNPS end to end: a member of staff is texted an anonymous campaign's survey, answers 2 and says why, over the
fake Twilio. No Slack alert is posted and no follow-up opened (an alert is a group of one, posted the minute the
person answered), and the log, as the service writes it, never ties the answer to the invitation that went to
their number."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaigns.dispatch.dispatcher import Dispatcher
from service.cli import cli
from service.container import Container
from service.web.app import create_app
from storage.tables import FollowUp, Response, SlackAlert
from tests.fixtures.anonymous import ZEBULON
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed

PULSE = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    anonymous: true
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        yield client


def reply(app: TestClient, body: str) -> None:
    params = inbound_sms_params(ZEBULON.phone, FROM_NUMBER, body)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN).status_code == 200


def test_an_anonymous_detractor_gets_no_alert_and_the_log_does_not_link_the_answer_to_the_invitation(
    engine: Container,
    dispatcher: Dispatcher,
    app: TestClient,
    fake_slack: FakeSlack,
    service_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    database_url: str,
) -> None:
    add_contacts(
        engine,
        [
            {
                "external_id": ZEBULON.external_id,
                "name": ZEBULON.name,
                "phone": ZEBULON.phone,
                "email": ZEBULON.email,
                "timezone": "UTC",
                **ZEBULON.properties,
            }
        ],
    )
    apply_yaml(engine, PULSE)
    plan(engine)
    assert dispatcher.drain().summary("surveys") == "surveys: 1 due, 1 sent"
    reply(app, "2")
    reply(app, ZEBULON.comment)
    engine.clock.advance(minutes=11)  # type: ignore[attr-defined]
    assert engine.slack is not None
    engine.slack.poster.run()

    with engine.db.transaction() as session:
        stored = session.scalars(select(Response)).one()
        alerts = session.scalar(select(func.count()).select_from(SlackAlert))
        follow_ups = session.scalar(select(func.count()).select_from(FollowUp))
    assert (stored.score, stored.comment) == (2, ZEBULON.comment)  # the answer counts ...
    assert alerts == follow_ups == 0  # ... but opens no case
    assert fake_slack.count("chat.postMessage") == 0

    [sent] = [r for r in caplog.records if getattr(r, "event", None) == "survey.sent"]
    [recorded] = [r for r in caplog.records if getattr(r, "event", None) == "reply.recorded"]
    assert "invitation" in sent.fields  # type: ignore[attr-defined]
    assert recorded.fields == {"response": stored.id, "campaign": "pulse", "channel": "sms"}  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if getattr(r, "event", None) == "alert.queued"]
    written = service_log.getvalue()
    for identity in (ZEBULON.name, ZEBULON.phone, ZEBULON.email, "Horatio", "score=2", "detractor"):
        assert identity not in written, identity
    assert json.dumps(ZEBULON.phone) not in written
    assert logging.getLogger().isEnabledFor(logging.DEBUG)  # everything the service logs was read

    # `nps events` for the person, personal data shown: the survey and the texts, not the answer.
    timeline = CliRunner().invoke(
        cli,
        ["--env-file", os.devnull, "events", "--contact", ZEBULON.external_id, "--show-personal-data"],
        env={"DATABASE_URL": database_url},
    )
    assert timeline.exit_code == 0, timeline.output
    assert "survey sent" in timeline.output and "reply recorded" not in timeline.output
    assert "score" not in timeline.output and "comment recorded" not in timeline.output
    assert (
        ZEBULON.comment not in timeline.output
        and "answer to an anonymous campaign: never shown" in timeline.output
    )

    # `nps contacts export` (a subject access request): the texts they exchanged about it are withheld too.
    exported = CliRunner().invoke(
        cli,
        ["--env-file", os.devnull, "contacts", "export", ZEBULON.external_id],
        env={"DATABASE_URL": database_url},
    )
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert data["responses"] == [] and ZEBULON.comment not in exported.output
    bodies = [m["body"] for m in data["messages"]]
    assert len(bodies) >= 3 and all("anonymous campaign: never shown" in body for body in bodies), bodies
