"""Defences that SECURITY.md lists, each shown from outside: replay, enumeration and injection attempts."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaigns.planning.planner import new_token
from service.container import Container
from storage.enums import CampaignStatus
from storage.tables import AuditEntry, Campaign, Contact
from tests.fixtures.app import API_KEY
from tests.fixtures.seeding import Seeder
from tests.fixtures.slack import ADMIN, SIGNING_SECRET
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import signed_headers, slash_command_body

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


def test_a_slack_request_replayed_after_five_minutes_is_refused_and_changes_nothing(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    Seeder(engine.db).campaign("pulse")
    body = slash_command_body(
        text="campaign pause pulse", user_id=ADMIN, response_url=fake_slack.response_url(ADMIN)
    )
    six_minutes_ago = time.time() - 6 * 60
    response = app.post(
        "/slack/events", content=body.encode(), headers=signed_headers(body, SIGNING_SECRET, six_minutes_ago)
    )
    assert response.status_code == 401
    with engine.db.transaction() as session:
        assert session.scalars(select(Campaign.status)).one() is CampaignStatus.ACTIVE
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_sql_shaped_text_is_stored_as_text(app: TestClient, engine: Container) -> None:
    name = "Robert'); DROP TABLE contacts;--"
    created = app.post(
        "/api/v1/contacts",
        json={"external_id": "x' OR '1'='1", "name": name, "phone": "+4915112345678"},
        headers=AUTH,
    )
    assert created.status_code in (200, 201)
    with engine.db.transaction() as session:
        stored = session.scalars(select(Contact)).one()
    assert (stored.external_id, stored.name) == ("x' OR '1'='1", name)


def test_a_guessed_survey_token_finds_nothing_and_real_tokens_carry_128_bits(
    app: TestClient, engine: Container, seed: Seeder
) -> None:
    for guess in ("1", "AAAAAAAAAAAAAAAAAAAAAA", "../../etc/passwd", "%00", "x" * 5000):
        assert app.get(f"/s/{guess}").status_code == 404
    assert len(new_token()) >= 22  # token_urlsafe(16): 16 random bytes


def test_every_test_security_md_cites_exists() -> None:
    """SECURITY.md's table names the test behind each defence; a renamed or deleted test must update it."""
    root = Path(__file__).parents[2]
    cited = re.findall(r"`([\w/]+/test_\w+\.py)(?:::(\w+))?`", (root / "SECURITY.md").read_text())
    assert len(cited) > 30
    for path, name in cited:
        source = root / "tests" / path
        assert source.is_file(), path
        if name:
            assert re.search(rf"^(async )?def {name}\(", source.read_text(), re.M), f"{path}::{name}"
