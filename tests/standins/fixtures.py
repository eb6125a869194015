"""Pytest fixtures for the protocol stand-ins: one server per session, state reset before every test.

Session scope keeps the suite fast (no server start per test); the reset keeps tests independent.
Registered from tests/conftest.py with `pytest_plugins = ["tests.standins.fixtures"]`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import FakeTwilio
from tests.standins.smtp import SmtpSink

SMTP_USERNAME = "nps-mailer"
SMTP_PASSWORD = "smtp-test-password"
"""Credentials `smtp_sink_auth` accepts."""


@pytest.fixture(scope="session")
def _fake_slack_server() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def fake_slack(_fake_slack_server: FakeSlack) -> Iterator[FakeSlack]:
    """A fake Slack Web API on 127.0.0.1; point `WebClient(base_url=fake_slack.url)` at it."""
    _fake_slack_server.reset()
    yield _fake_slack_server
    invalid = _fake_slack_server.invalid_payloads()
    assert not invalid, f"the app sent Slack payloads that Block Kit refuses: {invalid}"


@pytest.fixture(scope="session")
def _fake_twilio_server() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def fake_twilio(_fake_twilio_server: FakeTwilio) -> FakeTwilio:
    """A fake Twilio REST API on 127.0.0.1; set `client.api.base_url = fake_twilio.url`."""
    _fake_twilio_server.reset()
    return _fake_twilio_server


@pytest.fixture(scope="session")
def _smtp_sink_server() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def smtp_sink(_smtp_sink_server: SmtpSink) -> SmtpSink:
    """An SMTP server on 127.0.0.1:`smtp_sink.port` accepting mail without AUTH or TLS."""
    _smtp_sink_server.reset()
    return _smtp_sink_server


@pytest.fixture(scope="session")
def _smtp_sink_auth_server() -> Iterator[SmtpSink]:
    with SmtpSink(username=SMTP_USERNAME, password=SMTP_PASSWORD) as server:
        yield server


@pytest.fixture
def smtp_sink_auth(_smtp_sink_auth_server: SmtpSink) -> SmtpSink:
    """Like `smtp_sink` but requiring AUTH (PLAIN/LOGIN, no TLS) as SMTP_USERNAME / SMTP_PASSWORD."""
    _smtp_sink_auth_server.reset()
    return _smtp_sink_auth_server
