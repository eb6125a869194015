"""`nps doctor` against the stand-ins: a good setup passes, and each broken piece is one FAIL line saying what
to do, with exit code 1."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from bot.manifest import bot_scopes
from service.cli import cli
from service.doctor.database import check_database
from service.doctor.findings import CHECK_DEADLINE_SECONDS, TIMEOUT_SECONDS, Finding, Status
from storage.db import Database
from tests.standins.fake_slack import BOT_USER_ID, FakeSlack
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.fixtures import SMTP_PASSWORD, SMTP_USERNAME
from tests.standins.smtp import SmtpSink

BASE = "https://nps.example.com"
ALERTS, KUDOS = "C0ALERTS01", "C0KUDOS001"
SENDER = "+15550009999"
SERVICE = "MG" + "0" * 32


@pytest.fixture
def database_url(sqlite_db: Database) -> str:
    """A migrated SQLite database: the doctor's database check is the same query on both engines."""
    return sqlite_db.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def env(
    database_url: str, fake_slack: FakeSlack, fake_twilio: FakeTwilio, smtp_sink_auth: SmtpSink
) -> dict[str, str]:
    """A complete, working setup: every provider is a stand-in that knows this configuration."""
    fake_slack.set_channel_members(ALERTS, [BOT_USER_ID, "U0ANA00001"])
    fake_slack.set_channel_members(KUDOS, [BOT_USER_ID])
    fake_twilio.add_phone_number(SENDER, sms_url=f"{BASE}/twilio/sms")
    return {
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": BASE,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": "test-signing-secret",
        "SLACK_API_URL": fake_slack.url,
        "SLACK_ALERT_CHANNEL": ALERTS,
        "SLACK_KUDOS_CHANNEL": KUDOS,
        "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        "TWILIO_API_URL": fake_twilio.url,
        "TWILIO_FROM_NUMBER": SENDER,
        "SMTP_HOST": smtp_sink_auth.host,
        "SMTP_PORT": str(smtp_sink_auth.port),
        "SMTP_STARTTLS": "false",
        "SMTP_USERNAME": SMTP_USERNAME,
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "EMAIL_FROM": "Acme Surveys <surveys@example.com>",
    }


def doctor(env: dict[str, str], **changes: str | None) -> Result:
    """`nps doctor` with `env` changed (None removes a variable), no .env file, the process environment cleared of
    every variable the settings read."""
    settings_env = {**env, **changes}
    cleared: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(("SLACK_", "TWILIO_", "SMTP_", "NPS_"))
    }
    return CliRunner().invoke(cli, ["--env-file", os.devnull, "doctor"], env={**cleared, **settings_env})


def line(result: Result, subject: str) -> str:
    """The one line about `subject` (status first)."""
    found = [
        text for text in result.stdout.splitlines() if text.split(maxsplit=1)[1].startswith(f"{subject}:")
    ]
    assert len(found) == 1, result.stdout
    return found[0]


def test_a_working_setup_passes_every_check(env: dict[str, str]) -> None:
    result = doctor(env)
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.stdout
    assert line(result, "settings").startswith("ok")
    assert line(result, "PUBLIC_BASE_URL") == f"ok       PUBLIC_BASE_URL: {BASE}"
    assert "at the current migration" in line(result, "database")
    assert line(result, "slack token").startswith("ok       slack token: valid: bot @npsbot")
    assert (
        line(result, "slack scopes")
        == f"ok       slack scopes: all {len(bot_scopes())} scopes of bot/manifest.yml granted"
    )
    assert f"the bot is a member of {ALERTS}" in line(result, "slack SLACK_ALERT_CHANNEL")
    assert line(result, "slack SLACK_KUDOS_CHANNEL").startswith("ok")
    assert f"{BASE}/slack/events" in line(result, "slack request URL")
    assert f"account {DEFAULT_ACCOUNT_SID}" in line(result, "twilio credentials")
    assert line(result, "twilio sender") == (
        f"ok       twilio sender: number {SENDER} exists; its incoming-text webhook is {BASE}/twilio/sms"
    )
    webhooks = line(result, "twilio webhooks")
    assert f"{BASE}/twilio/sms" in webhooks and f"{BASE}/twilio/status" in webhooks
    assert line(result, "smtp").startswith("warning  smtp: connected to 127.0.0.1")  # the sink has no TLS
    assert line(result, "smtp login") == f"ok       smtp login: logged in as {SMTP_USERNAME}"


def test_nothing_configured_is_warnings_only(database_url: str) -> None:
    result = doctor({"DATABASE_URL": database_url, "PUBLIC_BASE_URL": "http://localhost:8000"})
    assert result.exit_code == 0, result.output
    assert line(result, "slack").startswith("warning  slack: not configured")
    assert line(result, "twilio").startswith("warning  twilio: not configured")
    assert line(result, "smtp").startswith("warning  smtp: not configured")
    assert "fine for trying locally" in line(result, "PUBLIC_BASE_URL")


def test_a_bad_slack_token_fails_with_what_to_do(env: dict[str, str]) -> None:
    result = doctor(env, SLACK_BOT_TOKEN="xoxz-not-a-token")
    assert result.exit_code == 1
    assert line(result, "slack token").startswith(
        "FAIL     slack token: SLACK_BOT_TOKEN refused by Slack (invalid_auth"
    )
    assert "OAuth & Permissions" in line(result, "slack token")
    assert "Traceback" not in result.output


def test_a_bot_outside_a_configured_channel_fails(env: dict[str, str], fake_slack: FakeSlack) -> None:
    fake_slack.set_channel_members(KUDOS, ["U0ANA00001"])
    result = doctor(env, SLACK_DIGEST_CHANNEL="C0UNKNOWN1")
    assert result.exit_code == 1
    assert line(result, "slack SLACK_KUDOS_CHANNEL") == (
        f"FAIL     slack SLACK_KUDOS_CHANNEL: the bot is not a member of {KUDOS} (#{KUDOS.lower()}): "
        "type /invite @NPS in that channel"
    )
    assert "no channel the bot can see" in line(result, "slack SLACK_DIGEST_CHANNEL")
    assert line(result, "slack SLACK_ALERT_CHANNEL").startswith("ok")


def test_a_scope_missing_from_the_installed_app_fails(env: dict[str, str], fake_slack: FakeSlack) -> None:
    fake_slack.set_scopes([s for s in bot_scopes() if s not in ("channels:history", "usergroups:read")])
    result = doctor(env)
    assert result.exit_code == 1
    assert line(result, "slack scopes").startswith(
        "FAIL     slack scopes: not granted: channels:history, usergroups:read: add them under OAuth & Permissions"
    )


def test_an_unreachable_slack_fails_instead_of_hanging(env: dict[str, str]) -> None:
    result = doctor(env, SLACK_API_URL="http://127.0.0.1:9/api/")
    assert result.exit_code == 1
    assert "cannot reach Slack at http://127.0.0.1:9/api/" in line(result, "slack token")


def test_socket_mode_needs_no_request_url(env: dict[str, str]) -> None:
    result = doctor(env, SLACK_SIGNING_SECRET=None, SLACK_APP_TOKEN="xapp-test-token")
    assert result.exit_code == 0, result.output
    assert "Socket Mode" in line(result, "slack request URL")


def test_bad_twilio_credentials_fail(env: dict[str, str]) -> None:
    result = doctor(env, TWILIO_AUTH_TOKEN="a-rotated-token")
    assert result.exit_code == 1
    assert line(result, "twilio credentials").startswith(
        "FAIL     twilio credentials: TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN refused (20003)"
    )
    assert "a-rotated-token" not in result.output


def test_a_sender_number_not_in_the_account_fails(env: dict[str, str]) -> None:
    result = doctor(env, TWILIO_FROM_NUMBER="+15550000000")
    assert result.exit_code == 1
    assert line(result, "twilio sender").startswith(
        "FAIL     twilio sender: TWILIO_FROM_NUMBER +15550000000 is not a phone number of this account"
    )


def test_a_number_whose_webhook_points_elsewhere_fails(env: dict[str, str], fake_twilio: FakeTwilio) -> None:
    fake_twilio.add_phone_number(SENDER, sms_url="https://old.example.com/sms")
    result = doctor(env)
    assert result.exit_code == 1
    assert line(result, "twilio sender") == (
        f"FAIL     twilio sender: number {SENDER} exists, but its incoming-text webhook is "
        f"https://old.example.com/sms: set it to {BASE}/twilio/sms (HTTP POST) under Messaging configuration, "
        "or replies and STOP are never recorded"
    )


def test_a_messaging_service_is_checked_by_its_sid(env: dict[str, str], fake_twilio: FakeTwilio) -> None:
    unknown = doctor(env, TWILIO_FROM_NUMBER=None, TWILIO_MESSAGING_SERVICE_SID=SERVICE)
    assert unknown.exit_code == 1
    assert f"{SERVICE}: no such Messaging Service in this account" in line(unknown, "twilio sender")
    fake_twilio.add_messaging_service(SERVICE, inbound_request_url=f"{BASE}/twilio/sms")
    known = doctor(env, TWILIO_FROM_NUMBER=None, TWILIO_MESSAGING_SERVICE_SID=SERVICE)
    assert known.exit_code == 0, known.output
    assert line(known, "twilio sender").startswith(
        f"ok       twilio sender: Messaging Service {SERVICE} exists"
    )


def test_an_smtp_server_refusing_the_login_fails(env: dict[str, str]) -> None:
    result = doctor(env, SMTP_PASSWORD="wrong-password")
    assert result.exit_code == 1
    assert line(result, "smtp login").startswith("FAIL     smtp login: 127.0.0.1:")
    assert "refused SMTP_USERNAME / SMTP_PASSWORD (535" in line(result, "smtp login")
    assert "wrong-password" not in result.output


def test_an_smtp_server_without_starttls_fails_when_starttls_is_on(env: dict[str, str]) -> None:
    result = doctor(env, SMTP_STARTTLS="true")
    assert result.exit_code == 1
    assert "does not offer STARTTLS" in line(result, "smtp")


def test_an_unreachable_smtp_server_fails(env: dict[str, str]) -> None:
    result = doctor(env, SMTP_PORT="9")
    assert result.exit_code == 1
    assert line(result, "smtp").startswith("FAIL     smtp: cannot connect to 127.0.0.1:9")


def test_an_unmigrated_database_fails_with_the_command_to_run(env: dict[str, str], tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.db").close()
    result = doctor(env, DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.exit_code == 1
    assert line(result, "database").endswith("is empty (no migration applied): run `nps db upgrade`")


def test_a_missing_database_file_fails_and_is_not_created(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    result = doctor(env, DATABASE_URL=f"sqlite:///{path}")
    assert result.exit_code == 1
    assert line(result, "database") == (
        f"FAIL     database: no database file at {path}: run `nps db upgrade` to create it, or set DATABASE_URL"
    )
    assert not path.exists()


def test_an_unreachable_postgresql_fails(env: dict[str, str]) -> None:
    result = doctor(env, DATABASE_URL="postgresql+psycopg://nps:secret@127.0.0.1:9/nps")
    assert result.exit_code == 1
    assert line(result, "database").startswith(
        "FAIL     database: cannot reach postgresql+psycopg://nps:***@127.0.0.1:9/nps"
    )
    assert ":secret@" not in result.output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{BASE}/nps", "has a path or query"),
        (f"{BASE}?x=1", "has a path or query"),
        ("http://localhost:8000", "is this machine, but Twilio, email, Slack (HTTP mode) must reach it"),
        ("http://nps.example.com", "is not https"),
    ],
)
def test_a_public_base_url_of_the_wrong_shape_fails(env: dict[str, str], url: str, expected: str) -> None:
    result = doctor(env, PUBLIC_BASE_URL=url)
    assert result.exit_code == 1
    assert line(result, "PUBLIC_BASE_URL").startswith("FAIL") and expected in line(result, "PUBLIC_BASE_URL")


def test_a_placeholder_secret_fails_as_the_settings_do(env: dict[str, str]) -> None:
    result = doctor(env, SLACK_BOT_TOKEN="xoxb-your-bot-token")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "FAIL     settings: SLACK_BOT_TOKEN is still the placeholder of config.example.env; set a real value or "
        "remove it (read from the environment)"
    ]


def test_a_user_token_is_not_a_bot_token(env: dict[str, str]) -> None:
    result = doctor(env, SLACK_BOT_TOKEN="xoxp-a-user-token")
    assert result.exit_code == 1
    assert line(result, "slack token").startswith("FAIL     slack token: SLACK_BOT_TOKEN is not a bot token")


def test_an_unreachable_twilio_fails_instead_of_hanging(env: dict[str, str]) -> None:
    result = doctor(env, TWILIO_API_URL="http://127.0.0.1:9")
    assert result.exit_code == 1
    assert line(result, "twilio credentials").startswith(
        "FAIL     twilio credentials: cannot reach Twilio at http://127.0.0.1:9"
    )


@pytest.mark.postgres
def test_a_migrated_postgresql_passes(env: dict[str, str], postgres_url: str) -> None:
    result = doctor(env, DATABASE_URL=postgres_url)
    assert result.exit_code == 0, result.output
    assert line(result, "database").startswith("ok       database: postgresql+psycopg://")
    assert "at the current migration" in line(result, "database")


def test_a_slack_that_does_not_answer_is_given_up_on(env: dict[str, str], fake_slack: FakeSlack) -> None:
    """Bounded: the doctor waits TIMEOUT_SECONDS for an answer, then says so and goes on with the other checks."""
    fake_slack.set_latency("auth.test", TIMEOUT_SECONDS + 3)
    result = doctor(env)
    assert result.exit_code == 1
    assert "cannot reach Slack" in line(result, "slack token") and "timed out" in line(result, "slack token")
    assert line(result, "smtp login").startswith("ok")


@pytest.mark.postgres
def test_doctor_database_check_finishes_while_alembic_version_is_locked(postgres_db: Database) -> None:
    """`connect_timeout` bounds connecting only: the schema read has a statement and lock timeout too, or
    `SELECT version_num FROM alembic_version` waits for as long as anything holds an ACCESS EXCLUSIVE lock on that
    table (VACUUM FULL, an ALTER TABLE, an operator's LOCK TABLE). The doctor promises to finish within its
    timeout."""
    database_url = postgres_db.engine.url.render_as_string(hide_password=False)
    holder = Database.connect(database_url)
    connection = holder.engine.connect()
    transaction = connection.begin()
    connection.execute(text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))
    done = threading.Event()
    findings: list[Finding] = []

    def check() -> None:
        findings.extend(check_database(database_url))
        done.set()

    worker = threading.Thread(target=check, daemon=True)
    try:
        worker.start()
        finished = done.wait(20)  # four times TIMEOUT_SECONDS
    finally:
        transaction.rollback()
        connection.close()
        holder.dispose()
        worker.join(30)
    assert finished, "nps doctor's database check still waiting after 20 s"
    assert [finding.status for finding in findings] == [Status.FAIL]
    assert "did not answer within 5 s" in findings[0].text


# --- servers that answer, but too slowly, forever: a per-read timeout is not a deadline -------------------------

NPS = str(Path(sys.executable).with_name("nps"))


def _server(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_quietly, args=(serve, client), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def _quietly(serve: Callable[[socket.socket], None], client: socket.socket) -> None:
    try:
        serve(client)
    except OSError:
        pass
    finally:
        client.close()


def _smtp_endless_banner(client: socket.socket) -> None:
    """A greeting that never ends: one continuation line a second, each well inside the socket timeout."""
    for _ in range(120):
        client.sendall(b"220-still greeting\r\n")
        time.sleep(1)


def _http_trickled_body(client: socket.socket) -> None:
    """An HTTP answer whose body comes one byte a second: every read returns inside requests' timeout."""
    client.recv(65536)
    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    for _ in range(120):
        client.sendall(b" ")
        time.sleep(1)


@pytest.fixture
def smtp_banner_port() -> Iterator[int]:
    yield from _server(_smtp_endless_banner)


@pytest.fixture
def http_trickle_port() -> Iterator[int]:
    yield from _server(_http_trickled_body)


def _run(
    args: list[str], env: dict[str, str], tmp_path: Path, limit: float = 30
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TWILIO_", "SMTP_", "NPS_"))}
    clean.pop("DATABASE_URL", None)
    try:
        return subprocess.run(
            [NPS, "--env-file", os.devnull, *args],
            env={**clean, **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"nps {' '.join(args)} still running after {limit} s")


def test_doctor_finishes_with_an_smtp_server_whose_greeting_never_ends(
    smtp_banner_port: int, tmp_path: Path
) -> None:
    """smtplib's timeout is per read; a reply of endless continuation lines keeps every read short."""
    (tmp_path / "nps.db").touch()
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'nps.db'}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_banner_port),
        "SMTP_STARTTLS": "false",
        "EMAIL_FROM": "surveys@example.com",
    }
    result = _run(["doctor"], env, tmp_path)
    assert "smtp" in result.stdout
    assert f"FAIL     smtp: did not finish within {CHECK_DEADLINE_SECONDS:g} s" in result.stdout
    assert result.returncode == 1


def test_doctor_finishes_with_a_twilio_that_trickles_its_answer(
    http_trickle_port: int, tmp_path: Path
) -> None:
    """requests' timeout is per read as well: an answer one byte a second never times out."""
    (tmp_path / "nps.db").touch()
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'nps.db'}",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "f" * 32,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_URL": f"http://127.0.0.1:{http_trickle_port}",
        "PUBLIC_BASE_URL": "https://nps.example.com",
    }
    result = _run(["doctor"], env, tmp_path)
    assert "twilio" in result.stdout
    assert f"FAIL     twilio: did not finish within {CHECK_DEADLINE_SECONDS:g} s" in result.stdout


def test_doctor_finishes_with_a_slack_that_trickles_its_answer(
    http_trickle_port: int, tmp_path: Path
) -> None:
    (tmp_path / "nps.db").touch()
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'nps.db'}",
        "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
        "SLACK_SIGNING_SECRET": "a" * 32,
        "SLACK_API_URL": f"http://127.0.0.1:{http_trickle_port}/api/",
        "SLACK_ALERT_CHANNEL": "C0ALERTS01",
        "PUBLIC_BASE_URL": "https://nps.example.com",
    }
    result = _run(["doctor"], env, tmp_path)
    assert "slack" in result.stdout
    assert f"FAIL     slack: did not finish within {CHECK_DEADLINE_SECONDS:g} s" in result.stdout
