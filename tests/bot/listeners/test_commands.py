"""`/nps` answers on a seeded database: quick ones in the ack, slow ones through response_url."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.container import Container, build_container
from service.web.app import create_app
from storage.enums import CampaignStatus
from storage.tables import AuditEntry, Campaign
from tests.fixtures.seeding import Seeder
from tests.fixtures.slack import ADMIN, ALERTS, MANAGER, OUTSIDER, post_to_slack_events
from tests.standins.fake_slack import FakeSlack, dm_channel_id
from tests.standins.slack_signing import slash_command_body


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


@pytest.fixture
def seeded(engine: Container) -> Seeder:
    seed = Seeder(engine.db)
    campaign = seed.campaign("pulse")
    ana = seed.contact("Ana Lima", plan="pro")
    yesterday = engine.clock.now() - timedelta(days=1)
    seed.mix(50, 30, 20, at=yesterday, campaign_id=campaign, contact_id=ana, snapshot={"plan": "pro"})
    seed.responses(
        [2],
        at=yesterday,
        campaign_id=campaign,
        contact_id=ana,
        snapshot={"plan": "free"},
        comment="slow support",
    )
    return seed


def command(app: TestClient, fake_slack: FakeSlack, text: str, user: str = MANAGER) -> dict[str, Any]:
    body = slash_command_body(text=text, user_id=user, response_url=fake_slack.response_url(user))
    response = post_to_slack_events(app, body)
    assert response.status_code == 200
    return response.json() if response.content else {}


def later_answer(fake_slack: FakeSlack, n: int = 1) -> str:
    answers = fake_slack.wait_for("response_url", n, timeout=10, successful=True)
    return json.dumps(answers[n - 1], ensure_ascii=False)


def test_score_is_acknowledged_then_answered_through_response_url(
    app: TestClient, fake_slack: FakeSlack, seeded: Seeder
) -> None:
    ack = command(app, fake_slack, "")
    assert "Working on it" in ack["text"]
    answer = later_answer(fake_slack)
    assert "+29" in answer or "29" in answer  # 50 promoters, 21 detractors of 101


def test_help_and_bad_input_answer_in_the_ack(app: TestClient, fake_slack: FakeSlack) -> None:
    assert "/nps trend" in json.dumps(command(app, fake_slack, "help"))
    wrong = command(app, fake_slack, "scroe last 30d")
    assert "/nps score" in wrong["text"] and "Traceback" not in wrong["text"]
    assert command(app, fake_slack, 'comments "unbalanced')["text"]


def test_campaign_control_is_for_admins_only(
    app: TestClient, fake_slack: FakeSlack, engine: Container, seeded: Seeder
) -> None:
    refused = command(app, fake_slack, "campaign pause pulse", user=MANAGER)
    assert "Only admins" in refused["text"]
    done = command(app, fake_slack, "campaign pause pulse", user=ADMIN)
    assert "paused" in done["text"]
    with engine.db.transaction() as session:
        assert session.scalars(select(Campaign.status)).one() is CampaignStatus.PAUSED
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["campaign.control.refused", "campaign.pause"]


def test_trend_uploads_a_chart_and_the_ack_comes_within_three_seconds(
    engine: Container, fake_slack: FakeSlack, seeded: Seeder
) -> None:
    """On a plain-http PUBLIC_BASE_URL Slack cannot fetch an image from us: the chart goes as a file."""
    settings = dataclasses.replace(engine.settings, public_base_url="http://localhost:8000")
    fake_slack.set_latency("files.getUploadURLExternal", 3.5)  # the slow part happens after the ack
    with TestClient(create_app(build_container(settings, db=engine.db, clock=engine.clock))) as app:
        started = time.monotonic()
        ack = command(app, fake_slack, "trend weekly")
        assert time.monotonic() - started < 3
        assert "Working on it" in ack["text"]
        answer = later_answer(fake_slack)
        assert "trend" in answer.lower()
        [completed] = fake_slack.wait_for("files.completeUploadExternal", 1, successful=True)
    assert next(iter(fake_slack.uploads().values())).startswith(b"\x89PNG")
    assert completed["channel_id"] == dm_channel_id(MANAGER)  # privately, like the answer


def test_compare_comments_contact_campaigns_and_followups(
    app: TestClient, fake_slack: FakeSlack, seeded: Seeder
) -> None:
    command(app, fake_slack, "compare plan")
    assert "pro" in later_answer(fake_slack, 1) and "free" in later_answer(fake_slack, 1)
    command(app, fake_slack, "comments detractors")
    assert "slow support" in later_answer(fake_slack, 2)
    assert "Ana Lima" in json.dumps(command(app, fake_slack, "contact c1"), ensure_ascii=False)
    assert "pulse" in json.dumps(command(app, fake_slack, "campaigns"))
    assert "No open follow-ups" in json.dumps(command(app, fake_slack, "followups"))


def test_contact_lookup_shows_no_personal_data_to_someone_outside_the_alert_channel(
    app: TestClient, fake_slack: FakeSlack, engine: Container, seeded: Seeder
) -> None:
    acknowledged = json.dumps(command(app, fake_slack, "contact c1", user=OUTSIDER), ensure_ascii=False)
    refused = later_answer(fake_slack)  # after Slack said who is in the alert channel
    assert "Ana Lima" not in acknowledged + refused and "c1" not in refused
    assert f"members of <#{ALERTS}> and admins" in refused
    with engine.db.transaction() as session:
        [entry] = session.scalars(select(AuditEntry)).all()
    assert (entry.actor, entry.action, entry.entity_type) == (
        f"slack:{OUTSIDER}",
        "contact.lookup.refused",
        "contact",
    )
    assert "c1" not in json.dumps(entry.details)  # what was looked up may itself be a phone number
    assert "Ana Lima" in json.dumps(command(app, fake_slack, "contact c1", user=MANAGER), ensure_ascii=False)


def test_comments_and_follow_ups_are_anonymous_outside_the_alert_channel(
    app: TestClient, fake_slack: FakeSlack, engine: Container, seeded: Seeder
) -> None:
    seeded.detractor(at=engine.clock.now() - timedelta(hours=1))
    command(app, fake_slack, "comments detractors", user=OUTSIDER)
    comments = later_answer(fake_slack, 1)
    assert "slow support" in comments and "Ana Lima" not in comments
    assert "names are hidden" in comments.lower()
    follow_ups = json.dumps(command(app, fake_slack, "followups", user=OUTSIDER), ensure_ascii=False)
    assert "1 open follow-up" in follow_ups and "Dana Detractor" not in follow_ups
    assert "Dana Detractor" in json.dumps(
        command(app, fake_slack, "followups", user=MANAGER), ensure_ascii=False
    )
    command(app, fake_slack, "comments detractors", user=MANAGER)
    assert "Ana Lima" in later_answer(fake_slack, 2)


def test_unsigned_requests_are_refused(app: TestClient) -> None:
    body = slash_command_body(text="")
    assert app.post("/slack/events", content=body.encode()).status_code == 401


def test_a_configured_benchmark_is_in_the_score_answer(
    engine: Container, fake_slack: FakeSlack, seeded: Seeder
) -> None:
    """NPS_BENCHMARK reaches /nps: the settings, the container's Slack dependencies, the answer."""
    import dataclasses

    from campaigns.scores.nps import Benchmark
    from service.container import build_container
    from service.web.app import create_app

    settings = dataclasses.replace(engine.settings, benchmark=Benchmark("SaaS", 41))
    with TestClient(create_app(build_container(settings, db=engine.db, clock=engine.clock))) as app:
        command(app, fake_slack, "")
        assert "Benchmark (SaaS): +41 · 12 points below it" in later_answer(fake_slack)


def test_commands_are_acknowledged_while_earlier_answers_are_still_on_their_way(
    app: TestClient, fake_slack: FakeSlack, seeded: Seeder
) -> None:
    """A score's answer goes out after the ack; while Slack takes its time over the answers (longer than the
    3 seconds an ack may take), more scores than Bolt has listener threads (5) are asked, and each later
    command is still acknowledged, not left without an answer."""
    fake_slack.set_latency("response_url", 5.0)
    for n in range(7):
        body = slash_command_body(
            text="score", user_id=MANAGER, response_url=fake_slack.response_url(f"r{n}")
        )
        response = post_to_slack_events(app, body)
        assert response.status_code == 200, n
        assert "Working on it" in response.json()["text"], n
    assert "/nps trend" in json.dumps(command(app, fake_slack, "help"))
    answers = fake_slack.wait_for("response_url", 7, timeout=20, successful=True)
    assert all("+29" in json.dumps(answer, ensure_ascii=False) for answer in answers)
