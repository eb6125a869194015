"""Pytest fixtures for the protocol stand-ins: one server per session, state reset before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import FakeTwilio


@pytest.fixture(scope="session")
def _fake_slack_server() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def fake_slack(_fake_slack_server: FakeSlack) -> FakeSlack:
    """A fake Slack Web API on 127.0.0.1; point `WebClient(base_url=fake_slack.url)` at it."""
    _fake_slack_server.reset()
    return _fake_slack_server


@pytest.fixture(scope="session")
def _fake_twilio_server() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def fake_twilio(_fake_twilio_server: FakeTwilio) -> FakeTwilio:
    """A fake Twilio REST API on 127.0.0.1; set `client.api.base_url = fake_twilio.url`."""
    _fake_twilio_server.reset()
    return _fake_twilio_server
