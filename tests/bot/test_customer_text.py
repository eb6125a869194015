"""Text that customers wrote reaches Slack as they typed it and never as Slack markup: in alerts, kudos, DMs,
`/nps followups`, `/nps contact`, `/nps comments`, App Home and the digest, a name or a comment cannot ping a
channel, forge a link, or link a URL, #channel or @name; cuts never split an escape; notifications stay short."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.digest import post_digest
from bot.poster import AlertPoster
from campaigns.followups.actions import assign
from campaigns.followups.opening import on_score
from campaigns.scores.nps import categorize
from service.container import Container, build_container
from storage.db import Database
from storage.enums import Channel
from storage.tables import Contact, FollowUp, Response
from tests.fixtures.seeding import assert_valid_blocks, assert_valid_view
from tests.fixtures.slack import ALERTS, KUDOS, MANAGER, post_to_slack_events
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import event_body, slash_command_body

NAME = "<!channel> Bob <https://evil.example|bank>"
COMMENT = "#general @here https://x.example &amp; <b>"
EXTERNAL_ID = "<!here>-<https://evil.example|id>"
EMAIL = "bob@evil.example"
PHONE = "+4915112345678"
PROPERTIES = {"plan": "<!subteam^S0EVIL> pro", "note": COMMENT}

# Customer text in each output is recognised by these; the objects that carry it must be verbatim.
MARKERS = ("Bob", "general", "evil", "x.example", "•", "subteam", "&amp;amp;")
NOTIFICATION_LIMIT = 300
ENTITY_SAFE = re.compile(r"(?:[^&<>]|&amp;|&lt;|&gt;)*")
"""mrkdwn in which every &, < and > belongs to a whole escape (our own mentions, dates and quotes aside)."""


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


def hostile_contact(db: Database, **changes: Any) -> int:
    with db.transaction() as session:
        fields: dict[str, Any] = {
            "external_id": EXTERNAL_ID,
            "name": NAME,
            "phone": PHONE,
            "email": EMAIL,
            "properties": PROPERTIES,
        }
        contact = Contact(**{**fields, **changes})
        session.add(contact)
        session.flush()
        return contact.id


def answer(db: Database, contact_id: int, score: int, comment: str | None, at: datetime) -> int:
    """A stored answer as a reply stores it: the follow-up and the alert are opened with it. Its response id."""
    with db.transaction() as session:
        response = Response(
            contact_id=contact_id,
            channel=Channel.SMS,
            score=score,
            category=categorize(score).value,
            comment=comment,
            contact_snapshot=dict(PROPERTIES),
            answered_at=at,
        )
        session.add(response)
        session.flush()
        on_score(response, now=at, session=session)
        return response.id


def text_objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and "text" in node:
            yield node
        for value in node.values():
            yield from text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from text_objects(item)


def assert_shown_as_typed(payload: dict[str, Any]) -> None:
    """No customer markup in any mrkdwn of the payload, escaped or not, and every mrkdwn text object that carries
    customer text is verbatim (Slack then links no URL, #channel or @name in it).

    plain_text objects (the alert's header) are not parsed by Slack at all: they show the text as typed."""
    mrkdwn = [t for t in text_objects(payload) if t["type"] == "mrkdwn"]
    others = [str(payload.get("text", ""))]
    for text in [*(t["text"] for t in mrkdwn), *others]:
        assert "<http" not in text and "<b>" not in text, text
        assert set(re.findall(r"<[!#@](\w*)", text)) <= {"date", "U0MANAGER", "U0AGENT"}, text
        ours = re.sub(r"<(?:@U0\w+|!date\^[^>]+)>|^> ?", "", text, flags=re.MULTILINE)  # mentions, quotes
        assert ENTITY_SAFE.fullmatch(ours), text
    carrying = [t for t in mrkdwn if any(marker in t["text"] for marker in MARKERS)]
    assert carrying, "the payload shows no customer text at all"
    for text in carrying:
        assert text.get("verbatim") is True, text


def later(engine: Container, minutes: float) -> None:
    engine.clock.advance(minutes=minutes)  # type: ignore[attr-defined]


# --- the alert outbox: alert, kudos, the assignee's DM, the edited alert ----------------------------------------


def test_alert_kudos_and_dm_show_customer_text_as_typed(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    contact = hostile_contact(engine.db)
    now = engine.clock.now()
    answer(engine.db, contact, 2, COMMENT, now)
    answer(engine.db, contact, 10, COMMENT, now)
    later(engine, 11)  # past the wait for a comment
    poster.run()
    posts = fake_slack.successful("chat.postMessage")
    assert sorted(p["channel"] for p in posts) == sorted([ALERTS, KUDOS])
    with engine.db.transaction() as session:
        follow_up = session.scalars(select(FollowUp.id)).one()
    assert assign(engine.db, follow_up, assignee=MANAGER, by=MANAGER, now=engine.clock.now())
    poster.run()
    sent = [*fake_slack.successful("chat.postMessage"), *fake_slack.successful("chat.update")]
    assert len(sent) == 4  # alert, kudos, the DM to the assignee, the alert edited
    for payload in sent:
        assert_valid_blocks(payload["blocks"])
        assert_shown_as_typed(payload)
        assert len(payload["text"]) <= NOTIFICATION_LIMIT
    alert = next(p for p in posts if p["channel"] == ALERTS)
    shown = json.dumps(alert["blocks"], ensure_ascii=False)
    assert "&lt;!channel&gt; Bob &lt;https://evil.example|bank&gt;" in shown
    assert "#general @here https://x.example &amp;amp; &lt;b&gt;" in shown
    assert alert["blocks"][0]["text"]["text"].endswith(f"from {NAME}")  # plain_text: shown as typed


def test_the_notification_text_of_a_long_comment_is_short_and_escaped(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    answer(engine.db, hostile_contact(engine.db), 1, "<!channel> " + "x" * 4990, engine.clock.now())
    later(engine, 11)
    poster.run()
    [alert] = fake_slack.successful("chat.postMessage")
    assert len(alert["text"]) <= NOTIFICATION_LIMIT and alert["text"].endswith('…"')
    assert "&lt;!channel&gt;" in alert["text"] and "<!channel>" not in alert["text"]
    assert_valid_blocks(alert["blocks"])


def test_a_long_comment_of_ampersands_is_cut_between_escapes(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    answer(engine.db, hostile_contact(engine.db, name="&" * 250), 1, "&" * 5000, engine.clock.now())
    later(engine, 11)
    poster.run()
    [alert] = fake_slack.successful("chat.postMessage")
    assert_valid_blocks(alert["blocks"])
    comment = alert["blocks"][1]["text"]["text"]
    assert re.fullmatch(r">(&amp;)+…", comment), comment[-20:]
    assert re.fullmatch(r'Detractor 1/10 from (&amp;)+…: "(&amp;)+…"', alert["text"]), alert["text"]
    assert_shown_as_typed(alert)


# --- /nps ------------------------------------------------------------------------------------------------------


def command(app: TestClient, fake_slack: FakeSlack, text: str) -> dict[str, Any]:
    """The answer: in the ack, or through response_url when Slack had to be asked who is in the alert channel
    (a membership is remembered for a minute)."""
    answered = fake_slack.count("response_url")
    body = slash_command_body(text=text, user_id=MANAGER, response_url=fake_slack.response_url(MANAGER))
    response = post_to_slack_events(app, body)
    assert response.status_code == 200
    ack = dict(response.json()) if response.content else {}
    if "blocks" in ack:
        return ack
    return dict(fake_slack.wait_for("response_url", answered + 1, timeout=10, successful=True)[answered])


def test_nps_followups_and_contact_show_names_and_ids_as_typed(
    app: TestClient, fake_slack: FakeSlack, engine: Container
) -> None:
    contact = hostile_contact(engine.db)
    answer(engine.db, contact, 2, COMMENT, engine.clock.now() - timedelta(hours=1))
    for text in ("followups", f"contact {EMAIL}"):
        ack = command(app, fake_slack, text)
        assert_valid_blocks(ack["blocks"])
        assert_shown_as_typed(ack)
    shown = json.dumps(command(app, fake_slack, f"contact {EMAIL}"), ensure_ascii=False)
    assert "&lt;!here&gt;-&lt;https://evil.example|id&gt;" in shown and "&amp;amp;" in shown
    assert "&lt;!channel&gt; Bob" in json.dumps(command(app, fake_slack, "followups"), ensure_ascii=False)


def test_nps_contact_cuts_a_comment_of_ampersands_between_escapes(
    app: TestClient, fake_slack: FakeSlack, engine: Container
) -> None:
    contact = hostile_contact(engine.db, name="&" * 250)
    answer(engine.db, contact, 2, "&" * 5000, engine.clock.now() - timedelta(hours=1))
    ack = command(app, fake_slack, f"contact {EMAIL}")
    assert_valid_blocks(ack["blocks"])
    assert_shown_as_typed(ack)


def test_nps_comments_show_comments_and_names_as_typed(
    app: TestClient, fake_slack: FakeSlack, engine: Container
) -> None:
    contact = hostile_contact(engine.db)
    answer(engine.db, contact, 2, COMMENT, engine.clock.now() - timedelta(hours=1))
    answer(engine.db, contact, 3, "&" * 5000, engine.clock.now() - timedelta(hours=2))
    command(app, fake_slack, "comments")
    [later_answer] = fake_slack.wait_for("response_url", 1, timeout=10, successful=True)
    assert_valid_blocks(later_answer["blocks"])
    assert_shown_as_typed(later_answer)
    shown = json.dumps(later_answer["blocks"], ensure_ascii=False)
    assert "#general @here https://x.example &amp;amp; &lt;b&gt;" in shown


# --- App Home and the digest --------------------------------------------------------------------------------------


def test_app_home_shows_no_customer_markup(app: TestClient, fake_slack: FakeSlack, engine: Container) -> None:
    contact = hostile_contact(engine.db)
    answer(engine.db, contact, 2, COMMENT, engine.clock.now() - timedelta(days=1))
    with engine.db.transaction() as session:
        session.scalars(select(FollowUp)).one().assignee = MANAGER
    body = event_body({"type": "app_home_opened", "user": MANAGER, "channel": "D0HOME", "tab": "home"})
    assert post_to_slack_events(app, body).status_code == 200
    [published] = fake_slack.wait_for("views.publish", 1, successful=True)
    assert_valid_view(published["view"])
    shown = json.dumps(published["view"], ensure_ascii=False)
    assert "Your open follow-ups:* 1" in shown
    assert "<!channel" not in shown and "<http" not in shown and "<b>" not in shown


def test_the_digest_shows_comment_themes_as_typed(engine: Container, fake_slack: FakeSlack) -> None:
    settings = dataclasses.replace(engine.settings, slack_digest_channel="C0DIGEST")
    container = build_container(settings, db=engine.db, clock=engine.clock)
    assert container.slack is not None
    contact = hostile_contact(engine.db)
    for hours in (1, 2, 3):  # links, mentions and entities are no themes: "evil" is the one word to show
        answer(engine.db, contact, 2, f"evil {COMMENT}", engine.clock.now() - timedelta(hours=hours))
    post_digest(container.slack)
    [digest] = fake_slack.successful("chat.postMessage")
    assert_valid_blocks(digest["blocks"])
    assert_shown_as_typed(digest)
    assert "evil (3)" in json.dumps(digest["blocks"])
