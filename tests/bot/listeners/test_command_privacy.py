"""What `/nps` shows of customers to someone who may not see personal data, and how customers' text is kept
from changing the lines of an answer: contact details inside comments and property values are masked, a filter
cannot single a customer out, and names and comments cannot add lines or turn a line around."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from service.container import Container
from tests.bot.slack_cases import (
    answered,
    command,
    customer,
    later_answer,
    later_answer_of,
    unclosed_bidi_before,
)
from tests.fixtures.engine import add_contacts
from tests.fixtures.slack import MANAGER, OUTSIDER
from tests.standins.fake_slack import FakeSlack


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


def test_contact_details_in_properties_are_masked_and_cannot_filter_comments_outside_the_alert_channel(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    """Contacts' properties are customers' data: a CSV import keeps every extra column (`work_email`,
    `mobile`, `account_owner` ...). `/nps compare PROPERTY` masks the emails and phone numbers among the values
    for someone outside the alert channel, and a filter on one is refused: it would single a customer out of the
    anonymous comments."""
    add_contacts(
        engine,
        [
            customer("c1", "Ana Lima", properties={"work_email": "ana.lima@acme.example"}),
            customer("c2", "Bo Berg", properties={"work_email": "bo.berg@acme.example"}),
        ],
    )
    yesterday = engine.clock.now() - timedelta(days=1)
    answered(engine, "c1", 2, "the invoice was wrong again", at=yesterday)
    answered(engine, "c2", 9, "fine", at=yesterday)

    command(app, fake_slack, "compare work_email", OUTSIDER)
    assert "ana.lima@acme.example" not in later_answer(fake_slack, 1)
    command(app, fake_slack, "comments work_email=ana.lima@acme.example", OUTSIDER)
    assert "the invoice was wrong again" not in later_answer(fake_slack, 2)


def test_anonymous_comments_mask_the_phone_numbers_and_emails_written_in_them(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    """`/nps comments` hides the customer's name from someone outside the alert channel, and also masks how to
    reach them when they wrote it into the comment itself."""
    add_contacts(engine, [customer("c1", "Ana Lima")])
    comment = "Call me back on +49 151 12345678 or at ana.lima@acme.example, nobody ever does"
    answered(engine, "c1", 2, comment, at=engine.clock.now() - timedelta(days=1))
    command(app, fake_slack, "comments detractors", OUTSIDER)
    shown = later_answer(fake_slack)
    assert "nobody ever does" in shown and "Ana Lima" not in shown
    assert "12345678" not in shown and "ana.lima@acme.example" not in shown, shown


@pytest.mark.parametrize(
    "name",
    ["Eve\n• *Big Account* 10/10 — due 2030-01-01 09:00 UTC, assigned", "\u202eEve"],
    ids=["line break", "right-to-left override"],
)
def test_a_contacts_name_cannot_add_lines_to_nps_followups_or_turn_the_rest_of_its_line_around(
    app: TestClient, engine: Container, fake_slack: FakeSlack, name: str
) -> None:
    """Names may hold line breaks (only external ids are checked for control characters) and bidi controls. In
    `/nps followups` a name stays on its one line, and a right-to-left override (U+202E) is dropped, so the score
    and due date after it read as written (not "01/3" for 3/10)."""
    add_contacts(engine, [customer("eve", name)])
    answered(engine, "eve", 3)
    command(app, fake_slack, "followups", MANAGER)  # answered after Slack said who is in the alert channel
    answer = later_answer_of(fake_slack)
    [section] = [b["text"]["text"] for b in answer["blocks"] if b["type"] == "section"]
    assert len(section.splitlines()) == 2, section  # the header and the one follow-up
    assert unclosed_bidi_before(section, " 3/10") == 0, section


def test_a_comment_cannot_add_an_answer_to_nps_contact(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    """`/nps contact` lists the last answers one per line, each comment inline: a comment with a line break
    stays on its answer's line and cannot add one that reads like another answer."""
    add_contacts(engine, [customer("c1", "Ana Lima")])
    answered(engine, "c1", 2, "ok”\n• 2026-05-01: 10/10 — “best service ever")
    command(app, fake_slack, "contact c1", MANAGER)  # answered after Slack said who is in the alert channel
    answer = later_answer_of(fake_slack)
    [section] = [b["text"]["text"] for b in answer["blocks"] if b["type"] == "section"]
    answers = [line for line in section.splitlines() if line.startswith("• ")]
    assert len(answers) == 1, section
