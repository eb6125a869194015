"""The respondent's web side: a campaign that emails Ana, the app under TestClient, and small helpers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from service.web.app import create_app
from storage.tables import Invitation, Response
from tests.engine import conftest as engine_fixtures
from tests.engine.conftest import PUBLIC_URL, add_contacts, apply_yaml, plan

# The campaign engine's fixtures (a manual clock, the container wired to the stand-ins, its dispatcher).
clock = engine_fixtures.clock
engine_settings = engine_fixtures.engine_settings
engine = engine_fixtures.engine
dispatcher = engine_fixtures.dispatcher

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [email]
    brand: Acme
    remind_after: 3d
    expires_after: 14d
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""
ANA: dict[str, Any] = {
    "external_id": "ana",
    "name": "Ana Lima",
    "email": "ana@example.com",
    "timezone": "UTC",
    "properties": {"plan": "pro"},
}
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    # The base URL is PUBLIC_BASE_URL, so the browser-like Origin the client sends is the survey's own.
    with TestClient(create_app(engine), base_url=PUBLIC_URL) as client:
        yield client


def survey(
    engine: Container, dispatcher: Dispatcher, contact: dict[str, Any] | None = None, campaign: str = CAMPAIGN
) -> str:
    """Email Ana (or `contact`) an invitation from `campaign`; returns its token."""
    add_contacts(engine, [contact or ANA])
    apply_yaml(engine, campaign)
    plan(engine)
    assert dispatcher.drain().sent == 1
    with engine.db.transaction() as session:
        return session.scalars(select(Invitation.token).order_by(Invitation.id.desc())).first() or ""


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def responses(engine: Container) -> list[Response]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(Response)))


def response_count(engine: Container) -> int:
    with engine.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Response)) or 0
