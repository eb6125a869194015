"""The alert's buttons and the Resolve modal: who may use them, and that a button only acts on its own alert.

Alerts are posted to the fake Slack by the poster; clicks are signed like Slack signs them and carry the alert
message's channel and ts in their container, as Slack's do.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import ids
from bot.poster import AlertPoster
from campaigns.clock import ManualClock
from service.container import Container, build_container
from service.web.app import create_app
from storage.enums import AlertKind, FollowUpStatus
from storage.tables import AuditEntry, FollowUp, SlackAlert
from tests.fixtures.seeding import Seeder, assert_valid_view
from tests.fixtures.slack import ADMIN, AGENT, ALERTS, MANAGER, OUTSIDER, post_to_slack_events
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import block_actions_body, view_submission_body

RESOLVED_VALUES = {
    "outcome": {"note": {"type": "plain_text_input", "value": "Called her, refund issued"}},
    "method": {"choice": {"type": "static_select", "selected_option": {"value": "phone call"}}},
}


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


@dataclass(frozen=True)
class Alert:
    """A detractor alert as Slack shows it: its follow-up, and the message the buttons are in."""

    follow_up_id: int
    channel: str
    ts: str

    def click(self, action_id: str, user: str, *, follow_up_id: int | None = None, **fields: Any) -> str:
        """The signed body of a click on this alert's `action_id` (by default about this alert's follow-up)."""
        about = self.follow_up_id if follow_up_id is None else follow_up_id
        if action_id == ids.ASSIGN:
            fields.setdefault("block_id", ids.follow_up_block(about))
        else:
            fields.setdefault("value", str(about))
        return block_actions_body(
            action_id, user_id=user, channel_id=self.channel, message_ts=self.ts, **fields
        )

    def resolve_submission(self, user: str) -> str:
        metadata = f"{self.follow_up_id}|{self.channel}|{self.ts}"
        return view_submission_body(
            ids.RESOLVE_VIEW, RESOLVED_VALUES, private_metadata=metadata, user_id=user
        )


def posted_alerts(engine: Container, poster: AlertPoster, count: int = 1) -> list[Alert]:
    seed = Seeder(engine.db)
    for n in range(count):
        seed.detractor(at=engine.clock.now() - timedelta(minutes=11), comment=f"comment {n}")
    assert poster.run() == count
    with engine.db.transaction() as session:
        rows = session.execute(
            select(FollowUp.id, SlackAlert.channel, SlackAlert.ts)
            .join(SlackAlert, SlackAlert.response_id == FollowUp.response_id)
            .where(SlackAlert.kind == AlertKind.DETRACTOR)
            .order_by(FollowUp.id)
        ).all()
    return [Alert(fid, channel, ts) for fid, channel, ts in rows]


def follow_up(engine: Container, follow_up_id: int) -> FollowUp:
    with engine.db.transaction() as session:
        row = session.get(FollowUp, follow_up_id)
        assert row is not None
        session.expunge(row)
        return row


def audit(engine: Container) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    with engine.db.transaction() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        return [(row.actor, row.action.value, row.entity_id, row.details) for row in rows]


def refusals(fake_slack: FakeSlack, n: int = 1) -> list[dict[str, Any]]:
    """The ephemeral answers Slack was asked to show (the listener runs after the ack, so wait for them)."""
    return fake_slack.wait_for("chat.postEphemeral", n, successful=True)


def test_a_member_of_the_alert_channel_can_acknowledge(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    [alert] = posted_alerts(engine, poster)
    assert post_to_slack_events(app, alert.click(ids.ACK, MANAGER)).status_code == 200
    [update] = fake_slack.wait_for("chat.update", 1, successful=True)
    assert f"Acknowledged by <@{MANAGER}>" in str(update["blocks"])
    assert follow_up(engine, alert.follow_up_id).acknowledged_by == MANAGER
    assert fake_slack.count("chat.postEphemeral") == 0
    # Who is in the channel came from Slack itself.
    assert fake_slack.calls("conversations.members")[0]["channel"] == ALERTS


def test_someone_outside_the_alert_channel_cannot_acknowledge(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    [alert] = posted_alerts(engine, poster)
    assert post_to_slack_events(app, alert.click(ids.ACK, OUTSIDER)).status_code == 200
    [refusal] = refusals(fake_slack)
    assert (refusal["channel"], refusal["user"]) == (ALERTS, OUTSIDER)
    assert f"Only members of <#{ALERTS}> and admins may acknowledge follow-ups" in refusal["text"]
    assert "Traceback" not in refusal["text"]
    unchanged = follow_up(engine, alert.follow_up_id)
    assert (unchanged.status, unchanged.acknowledged_by) == (FollowUpStatus.OPEN, None)
    assert fake_slack.count("chat.update") == 0
    [(actor, action, entity_id, details)] = audit(engine)
    assert (actor, action, entity_id) == (f"slack:{OUTSIDER}", "follow_up.refused", str(alert.follow_up_id))
    assert details | {"ts": None} == {
        "requested": "acknowledge",
        "reason": "not_responder",
        "channel": ALERTS,
        "ts": None,
    }


def test_an_admin_may_act_without_being_in_the_channel(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    [alert] = posted_alerts(engine, poster)
    post_to_slack_events(app, alert.click(ids.ACK, ADMIN))
    fake_slack.wait_for("chat.update", 1, successful=True)
    assert follow_up(engine, alert.follow_up_id).acknowledged_by == ADMIN


def test_someone_outside_the_channel_can_neither_open_nor_submit_the_resolve_modal(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    [alert] = posted_alerts(engine, poster)
    # The trigger_id lasts 3 seconds: the modal opens before Slack is asked, and the refusal replaces its form.
    post_to_slack_events(app, alert.click(ids.RESOLVE, OUTSIDER))
    fake_slack.wait_for("views.open", 1, successful=True)
    [replaced] = fake_slack.wait_for("views.update", 1, successful=True)
    assert "may resolve follow-ups" in json.dumps(replaced["view"]) and "submit" not in replaced["view"]
    assert_valid_view(replaced["view"])
    # Remembered for a minute: the next click is refused at once, without a modal.
    post_to_slack_events(app, alert.click(ids.RESOLVE, OUTSIDER))
    [refusal] = refusals(fake_slack)
    assert "may resolve follow-ups" in refusal["text"] and fake_slack.count("views.open") == 1

    # A modal opened while they were still a member is refused on submission, in the modal itself ...
    submitted = post_to_slack_events(app, alert.resolve_submission(OUTSIDER))
    assert submitted.status_code == 200
    answer = submitted.json()
    assert answer["response_action"] == "errors"
    assert f"Only members of <#{ALERTS}> and admins may resolve" in answer["errors"][ids.OUTCOME_BLOCK]
    # ... or, when Slack must be asked again, after the ack (which closes it), in an ephemeral message.
    engine_clock(engine).advance(minutes=2)
    closed = post_to_slack_events(app, alert.resolve_submission(OUTSIDER))
    assert closed.status_code == 200 and not closed.content
    [_, refusal] = refusals(fake_slack, 2)
    assert f"Only members of <#{ALERTS}> and admins may resolve" in refusal["text"]
    assert follow_up(engine, alert.follow_up_id).status is FollowUpStatus.OPEN
    assert [(a, d["requested"]) for _, a, _, d in audit(engine)] == [("follow_up.refused", "resolve")] * 4


def engine_clock(engine: Container) -> ManualClock:
    assert isinstance(engine.clock, ManualClock)
    return engine.clock


def test_a_case_can_only_be_assigned_to_someone_who_may_act_on_it(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    [alert] = posted_alerts(engine, poster)
    post_to_slack_events(app, alert.click(ids.ASSIGN, MANAGER, selected_user=OUTSIDER))
    [refusal] = refusals(fake_slack)
    assert refusal["user"] == MANAGER
    assert f"<@{OUTSIDER}> cannot be assigned" in refusal["text"] and f"<#{ALERTS}>" in refusal["text"]
    assert follow_up(engine, alert.follow_up_id).assignee is None
    assert fake_slack.count("chat.postMessage") == 1  # the alert; no DM to the outsider
    [(_, action, _, details)] = audit(engine)
    assert (action, details["reason"], details["assignee"]) == (
        "follow_up.refused",
        "assignee_not_responder",
        OUTSIDER,
    )

    post_to_slack_events(app, alert.click(ids.ASSIGN, MANAGER, selected_user=AGENT))
    fake_slack.wait_for("chat.update", 1, successful=True)
    assert follow_up(engine, alert.follow_up_id).assignee == AGENT


def test_a_button_carrying_another_alerts_follow_up_is_refused(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    first, second = posted_alerts(engine, poster, count=2)
    crafted = [
        first.click(ids.ACK, MANAGER, follow_up_id=second.follow_up_id),
        first.click(ids.ASSIGN, MANAGER, follow_up_id=second.follow_up_id, selected_user=AGENT),
        first.click(ids.RESOLVE, MANAGER, follow_up_id=second.follow_up_id),
        # a message that is no alert at all
        dataclasses.replace(first, ts="1700000000.000100").click(ids.ACK, MANAGER),
    ]
    for n, body in enumerate(crafted, start=1):
        assert post_to_slack_events(app, body).status_code == 200
        refusals(fake_slack, n)  # one at a time: each listener runs after its ack
    assert all("does not belong to this alert" in r["text"] for r in refusals(fake_slack, 4))
    for alert in (first, second):
        row = follow_up(engine, alert.follow_up_id)
        assert (row.status, row.acknowledged_by, row.assignee) == (FollowUpStatus.OPEN, None, None)
    assert fake_slack.count("views.open") == 0 and fake_slack.count("chat.update") == 0
    reasons = [(a, d["requested"], d["reason"]) for _, a, _, d in audit(engine)]
    assert reasons == [
        ("follow_up.refused", "acknowledge", "wrong_message"),
        ("follow_up.refused", "assign", "wrong_message"),
        ("follow_up.refused", "resolve", "wrong_message"),
        ("follow_up.refused", "acknowledge", "wrong_message"),
    ]


def test_when_slack_cannot_say_who_is_in_the_channel_only_admins_may_act(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    [alert] = posted_alerts(engine, poster)
    fake_slack.fail_next("conversations.members", status=200, body={"ok": False, "error": "missing_scope"})
    post_to_slack_events(app, alert.click(ids.ACK, MANAGER))
    [refusal] = refusals(fake_slack)
    assert "could not check" in refusal["text"] and "missing_scope" in refusal["text"]
    assert follow_up(engine, alert.follow_up_id).acknowledged_by is None
    assert audit(engine)[0][3]["reason"] == "lookup_failed"
    # A failure is not remembered: the next click asks Slack again.
    post_to_slack_events(app, alert.click(ids.ACK, MANAGER))
    fake_slack.wait_for("chat.update", 1, successful=True)
    assert follow_up(engine, alert.follow_up_id).acknowledged_by == MANAGER


@pytest.fixture
def configured(engine: Container, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The app with the responders configured (`request.param`: settings to change) instead of the channel."""
    settings = dataclasses.replace(engine.settings, **request.param)
    with TestClient(create_app(build_container(settings, db=engine.db, clock=engine.clock))) as client:
        yield client


@pytest.mark.parametrize(
    "configured",
    [{"slack_responder_group": "S0SUPPORT"}, {"slack_responders": (OUTSIDER,)}],
    indirect=True,
    ids=["user group", "user list"],
)
def test_configured_responders_replace_the_channel_members(
    configured: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    fake_slack.set_user_group("S0SUPPORT", [OUTSIDER])
    first, second = posted_alerts(engine, poster, count=2)
    post_to_slack_events(configured, first.click(ids.ACK, OUTSIDER))
    fake_slack.wait_for("chat.update", 1, successful=True)
    assert follow_up(engine, first.follow_up_id).acknowledged_by == OUTSIDER

    post_to_slack_events(configured, second.click(ids.ACK, MANAGER))  # in the channel, not a responder
    [refusal] = refusals(fake_slack)
    assert "Only " in refusal["text"] and f"<#{ALERTS}>" not in refusal["text"]
    assert follow_up(engine, second.follow_up_id).acknowledged_by is None
    assert fake_slack.count("conversations.members") == 0
