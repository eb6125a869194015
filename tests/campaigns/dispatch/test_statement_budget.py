"""What sending costs the database, per message: the figure docs/scaling.md sizes a PostgreSQL server by.

A batch claims, prepares and records its invitations in a few statements for all of them; each send's last look
before the provider call is its own short transaction. A change that adds a statement per message shows here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import event

from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from tests.fixtures.engine import add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import FakeTwilio

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
    messages:
      en: {sms: "Hi {{ first_name }}, how likely are you to recommend {{ company }}? {{ survey_url }}"}
"""
PEOPLE = 60
MAX_STATEMENTS_PER_MESSAGE = 2.5  # 2.35 for one batch of 60 on both engines (2.1 at batches of 256)
MAX_COMMITS_PER_MESSAGE = 1.2
# psycopg converts a statement's placeholders for PostgreSQL once and keeps the result, but only for statements
# of at most 4,096 bytes and 50 parameters (psycopg._queries); PostgreSQL prepares a statement only when its text
# repeats. A batch's statements about all of its invitations stay within both at any batch size.
PSYCOPG_CACHED_LENGTH, PSYCOPG_CACHED_PARAMETERS = 4096, 50


def survey_people(engine: Container, count: int) -> None:
    add_contacts(
        engine,
        [
            {"external_id": f"p{i}", "name": f"Person {i}", "phone": f"+4915120{i:06d}", "timezone": "UTC"}
            for i in range(count)
        ],
    )
    apply_yaml(engine, CAMPAIGN)
    plan(engine)


def test_a_message_costs_about_two_statements_and_one_commit(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    survey_people(engine, PEOPLE)
    counts = {"statements": 0, "commits": 0}

    def statement(*_args: Any) -> None:
        counts["statements"] += 1

    def commit(*_args: Any) -> None:
        counts["commits"] += 1

    event.listen(engine.db.engine, "before_cursor_execute", statement)
    event.listen(engine.db.engine, "commit", commit)
    try:
        sent = dispatcher.drain().sent
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", statement)
        event.remove(engine.db.engine, "commit", commit)
    assert sent == PEOPLE == fake_twilio.count(successful=True)
    per_message = {name: count / sent for name, count in counts.items()}
    assert per_message["statements"] <= MAX_STATEMENTS_PER_MESSAGE, per_message
    assert per_message["commits"] <= MAX_COMMITS_PER_MESSAGE, per_message


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_batch_s_statements_are_short_enough_for_psycopg_to_keep_them_parsed(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    survey_people(engine, 150)
    uncached: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, many: bool) -> None:
        rows: Sequence[Any] = parameters if many else [parameters]
        widest = max((len(row) if isinstance(row, Mapping | Sequence) else 0 for row in rows), default=0)
        if len(sql.encode()) > PSYCOPG_CACHED_LENGTH or widest > PSYCOPG_CACHED_PARAMETERS:
            uncached.append(f"{widest} parameters, {len(sql.encode())} bytes: {sql[:160]}")

    event.listen(engine.db.engine, "before_cursor_execute", statement)
    try:
        sent = dispatcher.drain().sent
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", statement)
    assert sent == 150 == fake_twilio.count(successful=True)
    assert uncached == [], "\n".join(uncached)
