"""`/nps compare` with each segment's impact, `/nps trend` with the significance of its last change, and saved
themes in Slack (`/nps themes`, `/nps theme NAME`, adding and removing them: admins only), through signed slash
commands and the fake Slack, on SQLite and PostgreSQL. Numbers hand-computed in
tests/campaigns/scores/test_segment_impact_and_trend_change.py."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.scores.saved_themes import add_theme
from service.container import Container
from storage.tables import AuditEntry, SavedTheme
from tests.fixtures.seeding import Seeder, all_text, assert_valid_blocks
from tests.fixtures.slack import ADMIN, MANAGER, post_to_slack_events
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import slash_command_body


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


def command(app: TestClient, fake_slack: FakeSlack, text: str, user: str = MANAGER) -> dict[str, Any]:
    body = slash_command_body(text=text, user_id=user, response_url=fake_slack.response_url(user))
    response = post_to_slack_events(app, body)
    assert response.status_code == 200
    return response.json() if response.content else {}


def later(fake_slack: FakeSlack, n: int = 1) -> dict[str, Any]:
    answer: dict[str, Any] = fake_slack.wait_for("response_url", n, timeout=10, successful=True)[n - 1]
    assert_valid_blocks(answer["blocks"])
    return answer


@pytest.fixture
def scored(engine: Container) -> Seeder:
    """Yesterday: pro 30/10/0 (+75), basic 20/20/20 (0), together +30; three weeks ago: basic 48/30/22 (+26)."""
    seed, now = Seeder(engine.db), engine.clock.now()
    seed.mix(30, 10, 0, at=now - timedelta(days=1), snapshot={"plan": "pro"})
    seed.mix(20, 20, 20, at=now - timedelta(days=1), snapshot={"plan": "basic"})
    seed.mix(48, 30, 22, at=now - timedelta(days=21), snapshot={"plan": "basic"})
    return seed


def test_compare_shows_each_segments_impact(app: TestClient, fake_slack: FakeSlack, scored: Seeder) -> None:
    command(app, fake_slack, "compare plan last 7d")
    text = all_text(later(fake_slack)["blocks"])
    pro, basic = (
        line for line in text.replace("```", "\n").splitlines() if line.startswith(("pro", "basic"))
    )
    assert "+75" in pro and "impact  +30" in pro, text
    assert "impact  -45" in basic, text
    assert "if it scored like the rest" in text


def test_trend_tells_whether_its_last_change_is_significant(
    app: TestClient, fake_slack: FakeSlack, scored: Seeder
) -> None:
    command(app, fake_slack, "trend weekly")
    text = all_text(later(fake_slack)["blocks"])
    assert "Last change: ▲ +4" in text and "within the margins · 64% likely a real rise" in text, text


@pytest.fixture
def themed(engine: Container) -> Seeder:
    """Last 30 days: 8 comments, 4 mention "delivery" (1 promoter, 3 detractors: NPS -50, 50%); the 30 days
    before: 2 comments, 1 mentions it (a passive: NPS 0, 50%)."""
    seed, now = Seeder(engine.db), engine.clock.now()
    seed.responses([2, 2, 2], at=now - timedelta(days=2), comment="Late DELIVERY again")
    seed.responses([10], at=now - timedelta(days=2), comment="fast delivery")
    seed.responses([10, 10, 9, 9], at=now - timedelta(days=2), comment="great support")
    seed.responses([8], at=now - timedelta(days=40), comment="delivery was fine")
    seed.responses([10], at=now - timedelta(days=40), comment="nice")
    seed.responses([0], at=now - timedelta(days=2))  # no comment: not counted among comments
    with engine.db.transaction() as session:
        add_theme("delivery", "delivery", "", session=session, now=now)
        add_theme("pricing", "price", "plan=pro", session=session, now=now)
    return seed


def test_themes_lists_mention_rate_and_nps_against_the_previous_period(
    app: TestClient, fake_slack: FakeSlack, themed: Seeder
) -> None:
    ack = command(app, fake_slack, "themes")
    assert "Working on it" in ack["text"]
    text = all_text(later(fake_slack)["blocks"])
    assert "*delivery*" in text and "4 of 8 comments (50%), NPS -50" in text, text
    assert "previous period: 1 of 2 (50%), NPS 0" in text, text
    assert "*pricing*" in text and "plan=pro" in text and "0 of 0 comments" in text, text


def test_a_theme_by_week(app: TestClient, fake_slack: FakeSlack, themed: Seeder) -> None:
    command(app, fake_slack, "theme delivery")
    text = all_text(later(fake_slack)["blocks"])
    assert "Theme *delivery*" in text and "4 of 8" in text and "50%" in text and "-50" in text, text
    command(app, fake_slack, "themes show nothing-like-it")
    assert "no theme called `nothing-like-it`" in all_text(later(fake_slack, 2)["blocks"])


def test_only_admins_add_and_remove_themes(
    app: TestClient, fake_slack: FakeSlack, engine: Container, themed: Seeder
) -> None:
    refused = command(app, fake_slack, 'themes add late "late delivery" plan=pro', user=MANAGER)
    assert "Only admins" in refused["text"]
    added = command(app, fake_slack, 'themes add late "late delivery" plan=pro', user=ADMIN)
    assert "late delivery" in json.dumps(added) and "plan=pro" in added["text"], added
    again = command(app, fake_slack, 'themes add late "late"', user=ADMIN)
    assert "already a theme called `late`" in again["text"]
    assert "Only admins" in command(app, fake_slack, "themes remove delivery", user=MANAGER)["text"]
    assert "removed" in command(app, fake_slack, "themes remove delivery", user=ADMIN)["text"]
    with engine.db.transaction() as session:
        saved = session.execute(select(SavedTheme.name, SavedTheme.phrase, SavedTheme.query)).all()
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert sorted(saved) == [("late", "late delivery", "plan=pro"), ("pricing", "price", "plan=pro")]
    assert actions == ["theme.change.refused", "theme.saved", "theme.change.refused", "theme.removed"]


def test_many_themes_stay_within_slacks_limits(
    app: TestClient, fake_slack: FakeSlack, engine: Container
) -> None:
    with engine.db.transaction() as session:
        for i in range(45):
            add_theme(
                f"theme {i:02d} " + "<&>" * 15, "x" * 200, "plan=pro", session=session, now=engine.clock.now()
            )
    command(app, fake_slack, "themes")
    answer = later(fake_slack)  # valid Block Kit, within 50 blocks
    assert "…and 5 more themes." in all_text(answer["blocks"]) and "<&>" not in json.dumps(answer["blocks"])
