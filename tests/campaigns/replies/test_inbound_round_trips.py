"""The inbound webhook's cost in database work, and the campaign definitions it keeps parsed between requests.

A reply is one request of Twilio's among hundreds a second at a campaign's peak; each statement is a round trip
to the database and each commit a flush to disk. The counts here are what one score reply and one comment cost
through the whole webhook (store, claim, conversation step, answer); benchmarks/inbound.py measures the time.
A campaign's definition is parsed once per version of it, not per message; a new version applied from the
campaign file is what the next reply gets.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container, build_container
from service.web.app import create_app
from storage.db import Database
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
    messages:
      en: {ask_comment: "WORDING. Why that score?"}
"""
ANA, BEN, CY = "+4915112345678", "+4915112345679", "+4915112345670"
SMS_URL = f"{PUBLIC_URL}/twilio/sms"
# Store and claim (one commit), the conversation step with its answer (one commit): at most this many
# statements for a first score from a surveyed number, and for the comment that follows. The survey is chosen in
# one query that also reads the contact, the response so far and the campaign's definition; PostgreSQL locks the
# invitation as it chooses and chooses again under the lock (one statement more). Before: 24 and 19 statements,
# 3 commits each; then 12/14 (SQLite/PostgreSQL) for a score. A comment updates its Slack alert. SQLite stores a
# new MessageSid without looking it up first (PostgreSQL looks first: see store_and_claim).
MAX_STATEMENTS_PER_SCORE = {"sqlite": 8, "postgresql": 10}
MAX_STATEMENTS_PER_COMMENT = {"sqlite": 9, "postgresql": 11}
MAX_COMMITS_PER_REPLY = 2


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        yield client


class Counted:
    """Statements and commits on the app's engine while a block runs."""

    def __init__(self, container: Container) -> None:
        self.engine = container.db.engine
        self.statements = self.commits = 0

    def __enter__(self) -> Counted:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)

    def _statement(self, *_args: Any) -> None:
        self.statements += 1

    def _commit(self, *_args: Any) -> None:
        self.commits += 1


def survey(engine: Container, dispatcher: Dispatcher, campaign: str = CAMPAIGN) -> None:
    add_contacts(
        engine,
        [
            {"external_id": "ana", "name": "Ana Lima", "phone": ANA},
            {"external_id": "ben", "name": "Ben Okafor", "phone": BEN},
            {"external_id": "cy", "name": "Cy Berg", "phone": CY},
        ],
    )
    apply_yaml(engine, campaign)
    plan(engine)
    assert dispatcher.drain().sent == 3


def reply(app: TestClient, sender: str, body: str) -> str:
    response = post_signed(app, SMS_URL, inbound_sms_params(sender, FROM_NUMBER, body), DEFAULT_AUTH_TOKEN)
    assert response.status_code == 200
    return str(response.text)


def test_a_score_and_its_comment_take_two_commits_each_and_few_statements(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    survey(engine, dispatcher)
    reply(app, BEN, "7")  # the first request of the app warms what it keeps: counted are the next ones
    with Counted(engine) as score:
        assert "Why that score?" in reply(app, ANA, "9")
    with Counted(engine) as comment:
        assert "Thank" in reply(app, ANA, "fast and friendly")
    dialect = engine.db.engine.dialect.name
    counts = (score.statements, score.commits, comment.statements, comment.commits)
    assert score.commits <= MAX_COMMITS_PER_REPLY, counts
    assert comment.commits <= MAX_COMMITS_PER_REPLY, counts
    assert score.statements <= MAX_STATEMENTS_PER_SCORE[dialect], counts
    assert comment.statements <= MAX_STATEMENTS_PER_COMMENT[dialect], counts


def test_a_new_wording_applied_from_the_campaign_file_is_what_the_next_reply_gets(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    survey(engine, dispatcher)
    assert "WORDING. Why that score?" in reply(app, ANA, "9")
    apply_yaml(engine, CAMPAIGN.replace("WORDING.", "NEW WORDING."))
    assert "NEW WORDING. Why that score?" in reply(app, BEN, "8")
    apply_yaml(engine, CAMPAIGN)  # and back: a version seen before is not mistaken for the newest
    answer = reply(app, CY, "7")
    assert "WORDING. Why that score?" in answer and "NEW" not in answer


def test_the_same_campaign_in_another_database_keeps_its_own_wording(
    engine: Container, dispatcher: Dispatcher, app: TestClient, sqlite_template: Path, tmp_path: Path
) -> None:
    """The parsed definitions are shared by the process: one database's campaign is never another's."""
    survey(engine, dispatcher)
    assert "WORDING. Why that score?" in reply(app, ANA, "9")
    shutil.copy(sqlite_template, tmp_path / "other.db")
    other = build_container(engine.settings, db=Database.connect(f"sqlite:///{tmp_path / 'other.db'}"))
    other_dispatcher = other.new_dispatcher(worker_id="other")
    try:
        survey(other, other_dispatcher, CAMPAIGN.replace("WORDING.", "OTHER."))
        with TestClient(create_app(other)) as other_app:
            assert "OTHER. Why that score?" in reply(other_app, ANA, "9")
    finally:
        other_dispatcher.close()
        other.close()
