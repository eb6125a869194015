"""The Slack app as a whole: only requests from the installed workspace (and its Enterprise Grid org) reach a
listener, whatever their signature says; the installed workspace is what auth.test says about our token."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import ids
from service.container import Container
from storage.enums import AuditAction, CampaignStatus
from storage.tables import AuditEntry, Campaign
from tests.bot.slack_cases import audited
from tests.fixtures.seeding import Seeder
from tests.fixtures.slack import ADMIN, ALERTS, MANAGER, post_to_slack_events
from tests.standins.fake_slack import TEAM_ID, FakeSlack
from tests.standins.slack_signing import (
    block_actions_body,
    event_body,
    slash_command_body,
    view_submission_body,
)

OTHER_TEAM, OTHER_GRID = "T0OTHER", "E0OTHER"


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


def refusals(engine: Container) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    with engine.db.transaction() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        return [(row.actor, row.action.value, row.entity_id, row.details) for row in rows]


@pytest.mark.parametrize(
    ("team_id", "enterprise_id", "refused_as"),
    [(OTHER_TEAM, None, OTHER_TEAM), (TEAM_ID, OTHER_GRID, OTHER_GRID)],
    ids=["another workspace", "another enterprise"],
)
def test_an_admins_user_id_from_another_workspace_cannot_pause_a_campaign(
    app: TestClient,
    engine: Container,
    fake_slack: FakeSlack,
    team_id: str,
    enterprise_id: str | None,
    refused_as: str,
) -> None:
    Seeder(engine.db).campaign("pulse")
    body = slash_command_body(
        text="campaign pause pulse",
        user_id=ADMIN,
        team_id=team_id,
        enterprise_id=enterprise_id,
        response_url=fake_slack.response_url(),
    )
    response = post_to_slack_events(app, body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_type"] == "ephemeral"
    assert "only answers the workspace it is installed in" in answer["text"]
    with engine.db.transaction() as session:
        assert session.scalars(select(Campaign.status)).one() is CampaignStatus.ACTIVE
    [(actor, action, entity_id, details)] = refusals(engine)
    assert (actor, action, entity_id) == (f"slack:{ADMIN}", "slack.request.refused", refused_as)
    assert details["requested"] == "/nps campaign"
    # Nothing was sent anywhere on behalf of the foreign request (its response_url is not ours to trust).
    assert fake_slack.count("response_url") == 0 and fake_slack.count("chat.postEphemeral") == 0


def test_buttons_modals_and_events_from_another_workspace_reach_no_listener(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    fid = Seeder(engine.db).detractor(at=engine.clock.now())
    click = block_actions_body(
        ids.ACK, value=str(fid), user_id=MANAGER, channel_id=ALERTS, team_id=OTHER_TEAM
    )
    assert post_to_slack_events(app, click).status_code == 200
    values = {"outcome": {"note": {"type": "plain_text_input", "value": "Closed it"}}}
    submit = view_submission_body(
        ids.RESOLVE_VIEW, values, private_metadata=f"{fid}|{ALERTS}|1.0", user_id=MANAGER, team_id=OTHER_TEAM
    )
    assert post_to_slack_events(app, submit).json()["response_action"] == "errors"
    home = event_body({"type": "app_home_opened", "user": MANAGER, "tab": "home"}, team_id=OTHER_TEAM)
    assert post_to_slack_events(app, home).status_code == 200
    requested = [(a, e, d["requested"]) for _, a, e, d in refusals(engine)]
    assert requested == [
        ("slack.request.refused", OTHER_TEAM, ids.ACK),
        ("slack.request.refused", OTHER_TEAM, ids.RESOLVE_VIEW),
        ("slack.request.refused", OTHER_TEAM, "app_home_opened"),
    ]
    assert fake_slack.count("views.publish") == 0 and fake_slack.count("chat.postEphemeral") == 0
    assert fake_slack.count("conversations.members") == 0


def test_requests_from_the_installed_workspace_are_answered(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    body = slash_command_body(text="help", user_id=MANAGER)
    assert "/nps trend" in json.dumps(post_to_slack_events(app, body).json())
    assert refusals(engine) == []
    assert fake_slack.successful("auth.test")  # the installed workspace comes from Slack


@pytest.mark.parametrize("looked_up", ["+4915112345678", "ana.lima@acme.example"])
def test_a_refused_request_from_another_workspace_keeps_no_phone_or_email_in_the_audit_log(
    app: TestClient, engine: Container, fake_slack: FakeSlack, looked_up: str
) -> None:
    """README: refusals are audited "with what was asked and why; never what was looked up". The workspace
    check audits a command by its name and subcommand only: `/nps +4915112345678` (or an email) is not kept."""
    body = slash_command_body(text=f"{looked_up} last 30d", user_id=MANAGER, team_id="T0OTHER")
    assert post_to_slack_events(app, body).status_code == 200
    [entry] = audited(engine, AuditAction.SLACK_REQUEST_REFUSED)
    assert looked_up not in json.dumps(entry.details), entry.details
