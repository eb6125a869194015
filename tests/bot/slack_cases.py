"""Helpers for the tests of who sees what of a case in Slack, and of the Slack listeners' time limits: customers and
their answers stored as a reply stores them, alerts as Slack shows them, and what was posted where. Requests are
signed like Slack signs them and Slack is the fake Web API; nothing of ours is replaced."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import ids
from bot.poster import AlertPoster
from campaigns.clock import ManualClock
from campaigns.followups.opening import on_score
from campaigns.scores.nps import categorize
from service.container import Container
from storage.enums import AlertKind, AuditAction, Channel
from storage.tables import AuditEntry, Campaign, Contact, FollowUp, Response, SlackAlert
from tests.fixtures.engine import add_contacts
from tests.fixtures.slack import post_to_slack_events
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import block_actions_body, slash_command_body, view_submission_body

T = TypeVar("T")
VIP_CHANNEL = "C0VIPCASES"  # a campaign's own alert channel, with other members than SLACK_ALERT_CHANNEL
GUEST, GUEST_TEAM = "U0GUEST", "T0GUEST"  # someone from a connected organisation (Slack Connect)
RESOLVED_VALUES = {
    "outcome": {"note": {"type": "plain_text_input", "value": "Called her, refund issued"}},
    "method": {"choice": {"type": "static_select", "selected_option": {"value": "phone call"}}},
}
TOO_LARGE = str(2**63)  # past SQLite's 64-bit integers (PostgreSQL's integer ids end at 2**31 - 1)
BIDI_OPEN = {"\u202a", "\u202b", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068"}
BIDI_CLOSE = {"\u202c", "\u2069"}


def eventually(check: Callable[[], T], timeout: float = 10.0) -> T:
    """`check()` once it is truthy (a listener that runs after its ack finishes on its own thread)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still {result!r} after {timeout} s")
        time.sleep(0.02)


def customer(external_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"external_id": external_id, "name": name, "phone": "+4915112345678", **fields}


def answered(
    engine: Container,
    external_id: str,
    score: int,
    comment: str | None = None,
    *,
    campaign: str | None = None,
    at: datetime | None = None,
) -> int:
    """An answer of the contact `external_id`, stored as a reply stores it (follow-up and alert opened with it);
    the response's id."""
    with engine.db.transaction() as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == external_id)).one()
        campaign_id = (
            session.scalars(select(Campaign.id).where(Campaign.name == campaign)).one() if campaign else None
        )
        response = Response(
            contact_id=contact.id,
            campaign_id=campaign_id,
            channel=Channel.SMS,
            score=score,
            category=categorize(score).value,
            comment=comment,
            contact_snapshot=dict(contact.properties),
            answered_at=at or engine.clock.now(),
        )
        session.add(response)
        session.flush()
        on_score(response, now=at or engine.clock.now(), session=session)
        return response.id


def later(engine: Container, **delta: float) -> None:
    clock = engine.clock
    assert isinstance(clock, ManualClock)
    clock.advance(**delta)


@dataclass(frozen=True)
class Alert:
    """A detractor alert as Slack shows it: its follow-up, and the message the buttons are in."""

    follow_up_id: int
    channel: str
    ts: str

    def click(self, action_id: str, user: str, *, about: str | None = None, **fields: Any) -> str:
        """The signed body of a click on this alert (about this alert's follow-up unless `about` is given)."""
        follow_up = str(self.follow_up_id) if about is None else about
        if action_id == ids.ASSIGN:
            fields.setdefault("block_id", ids.follow_up_block(follow_up))
        else:
            fields.setdefault("value", follow_up)
        return block_actions_body(
            action_id, user_id=user, channel_id=self.channel, message_ts=self.ts, **fields
        )

    def resolve_submission(self, user: str, *, about: str | None = None) -> str:
        follow_up = str(self.follow_up_id) if about is None else about
        return view_submission_body(
            ids.RESOLVE_VIEW,
            RESOLVED_VALUES,
            private_metadata=f"{follow_up}|{self.channel}|{self.ts}",
            user_id=user,
        )


def posted_alert(engine: Container, poster: AlertPoster) -> Alert:
    """Dana's detractor alert, posted to the alert channel."""
    add_contacts(engine, [customer("dana", "Dana Detractor")])
    answered(engine, "dana", 3, "nobody called back", at=engine.clock.now() - timedelta(minutes=11))
    assert poster.run() == 1
    return the_alert(engine)


def the_alert(engine: Container) -> Alert:
    """The one detractor alert, as Slack shows it."""
    with engine.db.transaction() as session:
        row = session.execute(
            select(FollowUp.id, SlackAlert.channel, SlackAlert.ts)
            .join(SlackAlert, SlackAlert.response_id == FollowUp.response_id)
            .where(SlackAlert.kind == AlertKind.DETRACTOR)
        ).one()
    return Alert(*row)


def follow_up(engine: Container, follow_up_id: int) -> FollowUp:
    with engine.db.transaction() as session:
        row = session.get(FollowUp, follow_up_id)
        assert row is not None
        session.expunge(row)
        return row


def audited(engine: Container, action: AuditAction) -> list[AuditEntry]:
    with engine.db.transaction() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def command(app: TestClient, fake_slack: FakeSlack, text: str, user: str) -> Any:
    body = slash_command_body(text=text, user_id=user, response_url=fake_slack.response_url(user))
    return post_to_slack_events(app, body)


def later_answer(fake_slack: FakeSlack, n: int = 1) -> str:
    return json.dumps(later_answer_of(fake_slack, n), ensure_ascii=False)


def later_answer_of(fake_slack: FakeSlack, n: int = 1) -> dict[str, Any]:
    """The `n`th answer posted to a response_url (answers that need Slack's word come after the ack)."""
    answers = fake_slack.wait_for("response_url", n, timeout=10, successful=True)
    return dict(answers[n - 1])


def everything_posted_to(fake_slack: FakeSlack, channel: str) -> str:
    """Every message (text and blocks) the app posted or edited in `channel`."""
    sent = [*fake_slack.calls("chat.postMessage"), *fake_slack.calls("chat.update")]
    return json.dumps([m for m in sent if m.get("channel") == channel], ensure_ascii=False)


def listener_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors with a traceback that escaped a listener (Bolt logs them as "Failed to run listener function")."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info is not None]


def unclosed_bidi_before(text: str, ours: str) -> int:
    """How many explicit bidi embeddings, overrides or isolates are still open where `ours` (our own text after
    a customer's) begins, on its line: each turns our text around or moves it."""
    at = text.index(ours)
    line_start = text.rfind("\n", 0, at) + 1
    depth = 0
    for char in text[line_start:at]:
        if char in BIDI_OPEN:
            depth += 1
        elif char in BIDI_CLOSE and depth:
            depth -= 1
    return depth
