"""The campaign engine wired to the stand-ins: fake Twilio for SMS, the SMTP sink for email, a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from campaigns.clock import ManualClock
from campaigns.contacts.store import upsert_contacts
from campaigns.contacts.validation import validate_contact
from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.store import apply_definitions
from campaigns.dispatch.dispatcher import Dispatcher, DispatchStats
from campaigns.planning.planner import PlanStats, plan_recurring
from service.container import Container, build_container
from service.settings import Settings
from storage.db import Database
from storage.tables import Invitation
from tests.conftest import API_KEY
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.smtp import SmtpSink

# A Monday, 10:00 UTC: inside the default Monday-Thursday 09:00-12:00 window for UTC contacts.
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FROM_NUMBER = "+15005550006"
PUBLIC_URL = "https://nps.example.com"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_10)


@pytest.fixture
def engine_settings(database_url: str, fake_twilio: FakeTwilio, smtp_sink: SmtpSink) -> Settings:
    return Settings(
        database_url=database_url,
        public_base_url=PUBLIC_URL,
        api_keys=(API_KEY,),
        twilio_account_sid=DEFAULT_ACCOUNT_SID,
        twilio_auth_token=DEFAULT_AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_api_url=fake_twilio.url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_starttls=False,
        email_from="Acme <nps@acme.example>",
        send_rate=1000,
        send_concurrency=8,
    )


@pytest.fixture
def engine(engine_settings: Settings, db: Database, clock: ManualClock) -> Iterator[Container]:
    container = build_container(engine_settings, db=db, clock=clock)
    yield container


@pytest.fixture
def dispatcher(engine: Container) -> Iterator[Dispatcher]:
    dispatcher = engine.new_dispatcher(worker_id="test-worker")
    yield dispatcher
    dispatcher.close()


def apply_yaml(container: Container, text: str) -> None:
    parsed = parse_campaign_file(text)
    with container.db.transaction() as session:
        apply_definitions(parsed.campaigns, session=session, now=container.clock.now())


def add_contacts(container: Container, rows: list[dict[str, Any]]) -> None:
    with container.db.transaction() as session:
        upsert_contacts([validate_contact(row) for row in rows], session=session, now=container.clock.now())


def plan(container: Container) -> PlanStats:
    return plan_recurring(container.db, now=container.clock.now(), rules=container.planning_rules, force=True)


def tick(container: Container, dispatcher: Dispatcher) -> DispatchStats:
    plan(container)
    return dispatcher.drain()


def count_invitations(container: Container, *conditions: Any) -> int:
    with container.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Invitation).where(*conditions)) or 0
