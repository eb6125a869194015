"""`GET /healthz` (liveness: the process answers, the database is not asked) and `GET /readyz` (readiness: the
database, its migrations, the scheduler, the channels and the Slack alert queue, each with its reason)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient

from bot.poster import AlertPoster
from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container, build_container
from service.scheduler import Ticker
from service.settings import Settings
from service.web.app import create_app
from storage.db import SQLITE_BUSY_TIMEOUT_MS, Database, alembic_config, upgrade
from storage.migrations_state import head_revision
from tests.fixtures.engine import add_contacts, apply_yaml, plan
from tests.fixtures.own_postgres import PostgresServer
from tests.fixtures.seeding import Seeder
from tests.fixtures.slack import ALERTS
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import FakeTwilio

POST = "chat.postMessage"
SMS_ONLY = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
"""
PEOPLE = [{"external_id": f"p{i}", "phone": f"+49151123456{i:02d}", "timezone": "UTC"} for i in range(3)]


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


def ready(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    return response.status_code, response.json()


def later(engine: Container, **delta: float) -> None:
    engine.clock.advance(**delta)  # type: ignore[attr-defined]


# --- healthy --------------------------------------------------------------------------------------------------


def test_readyz_is_200_on_a_healthy_app_with_a_reason_per_check(app: TestClient) -> None:
    status, body = ready(app)
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    checks = body["checks"]
    assert set(checks) == {"database", "migrations", "scheduler", "channels", "slack_alerts"}
    assert all(check["ok"] and check["reason"] for check in checks.values()), checks
    assert checks["migrations"]["current"] == checks["migrations"]["head"] == head_revision()
    assert checks["scheduler"]["reason"] == "not run here (--no-scheduler)"
    assert checks["channels"]["paused"] == []
    assert checks["slack_alerts"]["held"] == []


def test_healthz_is_liveness_only(app: TestClient) -> None:
    response = app.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_without_slack_says_slack_is_not_configured(client: TestClient) -> None:
    status, body = ready(client)
    assert status == 200, body
    assert body["checks"]["slack_alerts"] == {"ok": True, "reason": "Slack not configured", "held": []}


# --- the database -------------------------------------------------------------------------------------------


def test_readyz_is_503_and_healthz_200_when_the_sqlite_database_is_gone(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    db = Database.connect(f"sqlite:///{folder}/nps.db")
    upgrade(db.engine)
    container = build_container(Settings(database_url=str(db.engine.url)), db=db)
    with TestClient(create_app(container)) as client:
        assert ready(client)[0] == 200
        shutil.rmtree(folder)
        db.dispose()  # the pooled connections still hold the deleted file open

        status, body = ready(client)
        assert status == 503
        assert client.get("/healthz").status_code == 200  # liveness does not ask the database
    assert body["status"] == "unavailable"
    assert "database" in body["failing"]
    assert body["checks"]["database"] == {"ok": False, "reason": "unreachable"}
    assert body["checks"]["migrations"]["reason"] == "not checked: the database is unreachable"


@pytest.mark.postgres
def test_readyz_is_503_and_healthz_200_while_postgresql_is_stopped(
    stoppable_postgres: PostgresServer,
) -> None:
    db = Database.connect(stoppable_postgres.new_database())
    container = build_container(Settings(database_url=db.engine.url.render_as_string(False)), db=db)
    try:
        with TestClient(create_app(container)) as client:
            assert ready(client)[0] == 200
            stoppable_postgres.stop("immediate")
            status, body = ready(client)
            assert client.get("/healthz").status_code == 200
            assert status == 503
            assert body["checks"]["database"] == {"ok": False, "reason": "unreachable"}
            assert {"database", "migrations", "channels"} <= set(body["failing"])

            stoppable_postgres.start()
            assert ready(client)[0] == 200  # recovers by itself
    finally:
        db.dispose()


def test_readyz_is_503_while_the_migrations_are_behind(own_db: Database) -> None:
    url = own_db.engine.url.render_as_string(hide_password=False)
    container = build_container(Settings(database_url=url), db=own_db)
    with TestClient(create_app(container)) as client:
        command.downgrade(alembic_config(own_db.engine), "-1")
        status, body = ready(client)
        assert status == 503
        assert body["failing"] == ["migrations"]
        migrations = body["checks"]["migrations"]
        assert migrations["ok"] is False
        assert migrations["head"] == head_revision() != migrations["current"]
        assert "nps db upgrade" in migrations["reason"]

        upgrade(own_db.engine)
        assert ready(client)[0] == 200


# --- the scheduler --------------------------------------------------------------------------------------------


@pytest.fixture
def ticker(engine: Container) -> Iterator[Ticker]:
    ticker = Ticker(engine, holder="serve-a")
    yield ticker
    ticker.dispatcher.close()


def test_readyz_reports_the_scheduler_of_this_process_and_503_once_it_stops_ticking(
    engine: Container, ticker: Ticker
) -> None:
    with TestClient(create_app(engine, ticker=ticker)) as client:
        status, body = ready(client)
        assert status == 503  # never ticked yet
        assert body["checks"]["scheduler"]["reason"] == "not started"

        ticker.renew_lease()  # the lease job's tick
        status, body = ready(client)
        assert status == 200, body
        assert body["checks"]["scheduler"]["state"] == "active"

        tick = engine.settings.tick_seconds
        later(engine, seconds=3 * tick + 1)  # no tick for longer than the lease lasts
        status, body = ready(client)
        assert status == 503
        assert body["failing"] == ["scheduler"]
        assert body["checks"]["scheduler"]["reason"].startswith(f"no tick for {3 * tick + 1} s")

        ticker.renew_lease()
        assert ready(client)[0] == 200


def test_a_standby_scheduler_is_ready_while_another_process_holds_the_lease(
    engine: Container, ticker: Ticker
) -> None:
    other = Ticker(engine, holder="serve-b")
    try:
        other.renew_lease()
        ticker.renew_lease()
        with TestClient(create_app(engine, ticker=ticker)) as client:
            status, body = ready(client)
        assert status == 200, body
        assert body["checks"]["scheduler"]["state"] == "standby"
        assert "another process holds the lease" in body["checks"]["scheduler"]["reason"]
    finally:
        other.dispatcher.close()


# --- channels -----------------------------------------------------------------------------------------------


def test_readyz_is_503_while_sms_is_paused_by_a_refused_token_and_200_once_a_probe_works(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    add_contacts(engine, PEOPLE)
    apply_yaml(engine, SMS_ONLY)
    plan(engine)
    fake_twilio.fail_next(20003, times=len(PEOPLE))  # a rotated auth token
    paused_at = engine.clock.now()
    dispatcher.drain()

    status, body = ready(app)
    assert status == 503
    assert body["failing"] == ["channels"]
    channels = body["checks"]["channels"]
    [pause] = channels["paused"]
    assert pause["channel"] == "sms"
    assert pause["code"] == "20003"
    assert "TWILIO_AUTH_TOKEN" in pause["reason"]
    assert pause["since"] == paused_at.isoformat()
    assert pause["next_probe"] > pause["since"]
    assert "sms" in channels["reason"] and "20003" in channels["reason"]

    fake_twilio.reset()  # the token is fixed
    later(engine, minutes=20)
    dispatcher.drain()
    status, body = ready(app)
    assert status == 200, body
    assert body["checks"]["channels"] == {"ok": True, "reason": "no channel paused", "paused": []}


# --- the Slack alert queue ------------------------------------------------------------------------------------


def test_readyz_is_503_while_slack_alerts_are_held_on_a_channel_the_bot_left(
    engine: Container, seed: Seeder, fake_slack: FakeSlack, poster: AlertPoster, app: TestClient
) -> None:
    seed.detractor(at=engine.clock.now() - timedelta(minutes=15))
    fake_slack.refuse_channel(ALERTS, "not_in_channel")
    poster.run()

    status, body = ready(app)
    assert status == 503
    assert body["failing"] == ["slack_alerts"]
    slack = body["checks"]["slack_alerts"]
    [held] = slack["held"]
    assert (held["channel"], held["alerts"]) == (ALERTS, 1)
    assert "not_in_channel" in held["reason"]
    assert ALERTS in slack["reason"] and "not_in_channel" in slack["reason"]

    fake_slack.accept_channel(ALERTS)  # the bot is invited back
    later(engine, minutes=6)
    poster.run()
    assert fake_slack.successful(POST)
    assert ready(app)[0] == 200


def test_readyz_is_503_while_slack_refuses_the_apps_token(
    engine: Container, seed: Seeder, fake_slack: FakeSlack, poster: AlertPoster, app: TestClient
) -> None:
    seed.detractor(at=engine.clock.now() - timedelta(minutes=15))
    fake_slack.fail_next(POST, status=200, body={"ok": False, "error": "invalid_auth"})
    poster.run()

    status, body = ready(app)
    assert status == 503
    [held] = body["checks"]["slack_alerts"]["held"]
    assert held["channel"] == "*"  # every channel waits: the app itself is refused
    assert "invalid_auth" in held["reason"]

    later(engine, minutes=16)
    poster.run()
    assert len(fake_slack.successful(POST)) == 1
    assert ready(app)[0] == 200


# --- a probe that waits on a lock -----------------------------------------------------------------------------


@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_readyz_answers_503_while_a_migration_holds_a_table_it_reads(
    engine: Container, app: TestClient
) -> None:
    """`nps db upgrade` altering a table takes ACCESS EXCLUSIVE on it for as long as it runs; an orchestrator's
    probe gives up after a second or so and marks every web process dead at once. The probe answers meanwhile,
    503 naming the check that timed out, and 200 again once the lock is gone.

    10 s is a generous bound against a probe that otherwise never answers while the lock is held.
    """
    with engine.db.engine.connect() as migration, ThreadPoolExecutor(1) as pool:
        locked = migration.begin()
        migration.exec_driver_sql("LOCK TABLE channel_pauses IN ACCESS EXCLUSIVE MODE")
        probe = pool.submit(ready, app)
        try:
            answer = probe.result(timeout=10)
        except FutureTimeout:
            answer = None
        finally:
            locked.rollback()
    assert answer is not None, "GET /readyz hung while a table it reads was locked"
    status, body = answer
    assert status == 503
    assert body["failing"] == ["channels"]
    assert body["checks"]["channels"]["reason"].startswith("timed out after 2 s")
    assert ready(app)[0] == 200


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_readyz_gives_sqlites_connections_back_with_their_busy_timeout(
    engine: Container, app: TestClient
) -> None:
    """Readiness shortens the busy timeout of the connection it reads on; the next user of that connection waits
    as long as ever for a lock."""
    assert ready(app)[0] == 200
    pool = engine.db.engine.pool
    with engine.db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS, (
            pool.status()
        )
