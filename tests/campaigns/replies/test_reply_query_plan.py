"""A reply finds its survey through the replying number's index: no scan of every survey text ever sent.

Each inbound SMS looks up the newest survey text sent to its number (campaigns.replies.responses). SQLite,
planning by the schema alone, read it through the index of outbound outcomes (direction, channel, purpose,
send state): every survey text ever sent, then sorted. That cost a third of a reply's CPU with 10,000 surveys
sent and grows with each campaign. These tests take the query exactly as a reply sends it (captured on its way
to the driver), ask the database for its plan, and require the number's index read newest first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, text

from campaigns.replies.responses import latest_sms_invitation
from storage.db import Database
from storage.enums import Channel, Direction, InvitationState, MessagePurpose, SendState
from storage.tables import Campaign, Contact, Invitation, Message
from tests.campaigns.dispatch.test_claim_plan import nodes, outline, postgres_plan

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SENT = NOW - timedelta(days=1)
REPLY_INDEX = "ix_messages_address_id"


def phone(n: int) -> str:
    return f"+4915110{n:06d}"


@contextmanager
def captured_choice(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The survey choice's SELECT as the reply hands it to the driver: its SQL text and its parameters."""
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT INVITATIONS.ID") and "messages.address" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)


def fill(db: Database, numbers: int) -> None:
    """`numbers` contacts, each surveyed twice (an invitation text and a reminder, both taken by Twilio)."""
    with db.transaction() as session:
        campaign_id = session.execute(
            insert(Campaign).values(name="pulse", kind="relationship").returning(Campaign.id)
        ).scalar_one()
        contacts = [
            {
                "external_id": f"c{n}",
                "phone": phone(n),
                "properties": {},
                "created_at": SENT,
                "updated_at": SENT,
            }
            for n in range(numbers)
        ]
        contact_ids = session.execute(insert(Contact).returning(Contact.id), contacts).scalars().all()
        invitations = [
            {
                "contact_id": contact_id,
                "campaign_id": campaign_id,
                "state": InvitationState.SENT,
                "due_at": SENT,
                "token": f"t{n}",
                "created_at": SENT,
                "updated_at": SENT,
            }
            for n, contact_id in enumerate(contact_ids)
        ]
        invitation_ids = (
            session.execute(insert(Invitation).returning(Invitation.id), invitations).scalars().all()
        )
        texts = [
            {
                "direction": Direction.OUTBOUND,
                "channel": Channel.SMS,
                "purpose": purpose,
                "address": phone(n),
                "body": "How likely are you to recommend us?",
                "send_state": SendState.SENT,
                "invitation_id": invitation_id,
                "created_at": SENT,
                "updated_at": SENT,
            }
            for purpose in (MessagePurpose.INVITATION, MessagePurpose.REMINDER)
            for n, invitation_id in enumerate(invitation_ids)
        ]
        session.execute(insert(Message), texts)


def choice_statement(db: Database, number: int) -> tuple[str, Any]:
    with captured_choice(db) as seen, db.transaction() as session:
        surveyed = latest_sms_invitation(phone(number), now=NOW, session=session)
    assert surveyed is not None and surveyed.contact is not None  # the fill is right: the survey was found
    assert surveyed.contact.phone == phone(number)
    assert len(seen) == 1  # an open survey was taken: the in-flight query was not needed
    return seen[0]


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh", "analyzed"])
def test_sqlite_finds_the_survey_of_a_reply_by_its_number(sqlite_db: Database, analyzed: bool) -> None:
    fill(sqlite_db, 500)
    if analyzed:
        with sqlite_db.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    statement, parameters = choice_statement(sqlite_db, 250)
    with sqlite_db.engine.connect() as connection:
        steps = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert any(f"SEARCH messages USING INDEX {REPLY_INDEX} (address=?)" in step for step in steps), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps


@pytest.mark.postgres
def test_postgres_finds_the_survey_of_a_reply_by_its_number(empty_postgres_db: Database) -> None:
    fill(empty_postgres_db, 10_000)
    with empty_postgres_db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE contacts, campaigns, invitations, messages"))
    plan = postgres_plan(empty_postgres_db, *choice_statement(empty_postgres_db, 5_000))
    found = list(nodes(plan))
    described = "\n".join(outline(plan))
    on_messages = [n for n in found if n.get("Relation Name") == "messages"]
    assert on_messages and all(n.get("Index Name") == REPLY_INDEX for n in on_messages), described
    assert not [n for n in found if "Sort" in n["Node Type"]], described
