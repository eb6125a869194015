"""`GET /metrics`: what an operator's Prometheus reads, parsed with prometheus-client's own parser.

Each test plays a scenario through the stand-ins (surveys sent through fake Twilio, signed replies, a refused
token, a Slack channel the bot left) and reads the numbers back as Prometheus would.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.poster import AlertPoster
from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container, build_container
from service.scheduler import Ticker
from service.settings import Settings
from service.web.app import create_app
from storage.db import Database, upgrade
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.fixtures.seeding import Seeder
from tests.fixtures.slack import ALERTS
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed, status_callback_params

SMS_ONLY = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""
PHONES = [f"+4915112345{i:03d}" for i in range(5)]
PEOPLE = [{"external_id": f"p{i}", "phone": phone, "timezone": "UTC"} for i, phone in enumerate(PHONES)]
BAD_NUMBER, DETRACTOR, UNSURE, STOPPER, UNDELIVERED = PHONES
METRICS_TOKEN = "metrics-token-0123456789-abcdefghijklmnop"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels; KeyError names what was there instead."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        there = sorted(dict(lbls) for n, lbls in samples if n == name)  # type: ignore[type-var]
        raise KeyError(f"{name}{labels} not exposed; {name} has {there}")
    return samples[key]


def reply(app: TestClient, sender: str, body: str) -> None:
    params = inbound_sms_params(sender, FROM_NUMBER, body)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN).status_code == 200


def later(engine: Container, **delta: float) -> None:
    engine.clock.advance(**delta)  # type: ignore[attr-defined]


# --- a survey round -------------------------------------------------------------------------------------------


def test_a_survey_round_shows_invitations_messages_replies_and_opt_outs(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    add_contacts(engine, PEOPLE)
    apply_yaml(engine, SMS_ONLY)
    plan(engine)
    fake_twilio.fail_to(BAD_NUMBER, code=21211)  # not a valid phone number: permanent
    dispatcher.drain()
    sent = {message.to: message.sid for message in fake_twilio.messages()}
    assert set(sent) == {DETRACTOR, UNSURE, STOPPER, UNDELIVERED}

    reply(app, DETRACTOR, "6")
    reply(app, UNSURE, "7 or 8")  # one clarification
    reply(app, STOPPER, "STOP")
    callback = status_callback_params(sent[UNDELIVERED], "undelivered", UNDELIVERED, FROM_NUMBER, 30003)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/status", callback, DEFAULT_AUTH_TOKEN).status_code == 204

    samples = scrape(app)
    assert value(samples, "nps_database_up") == 1
    assert value(samples, "nps_invitations", state="sent") == 2  # the unsure one and the one who stopped
    assert value(samples, "nps_invitations", state="responded") == 1
    # The bad number (its only channel refused it) and the one the carrier could not deliver.
    assert value(samples, "nps_invitations", state="undeliverable") == 2
    assert value(samples, "nps_invitations", state="planned") == 0  # every state is there, zeros too
    assert value(samples, "nps_messages_sent_total", channel="sms", purpose="invitation") == 4
    assert value(samples, "nps_messages_sent_total", channel="sms", purpose="clarification") == 1
    assert (
        value(
            samples,
            "nps_messages_failed_total",
            channel="sms",
            purpose="invitation",
            outcome="rejected",
            code="21211",
        )
        == 1
    )
    assert (
        value(
            samples,
            "nps_messages_failed_total",
            channel="sms",
            purpose="invitation",
            outcome="undelivered",
            code="30003",
        )
        == 1
    )
    assert value(samples, "nps_replies_received_total", channel="sms") == 3
    assert value(samples, "nps_replies_clarified_total", channel="sms") == 1
    assert value(samples, "nps_responses_total", channel="sms", category="detractor") == 1
    assert value(samples, "nps_responses_total", channel="sms", category="promoter") == 0
    assert value(samples, "nps_opted_out_addresses", channel="sms", source="sms:STOP") == 1
    assert value(samples, "nps_outbox_due", purpose="invitation") == 0
    assert value(samples, "nps_channel_paused", channel="sms") == 0


def test_request_latency_is_per_route_template_never_per_raw_path(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    add_contacts(engine, PEOPLE[:1])
    apply_yaml(engine, SMS_ONLY)
    plan(engine)
    dispatcher.drain()
    reply(app, PHONES[0], "9")
    reply(app, PHONES[0], "great")
    assert app.get("/s/not-a-real-token").status_code == 404
    assert app.get("/no/such/page").status_code == 404

    samples = scrape(app)
    count = "nps_http_request_duration_seconds_count"
    assert value(samples, count, method="POST", route="/twilio/sms") == 2
    assert value(samples, count, method="GET", route="/s/{token}") == 1
    assert value(samples, count, method="GET", route="unmatched") == 1
    assert value(samples, "nps_http_requests_total", method="POST", route="/twilio/sms", status="200") == 2
    assert value(samples, "nps_http_requests_total", method="GET", route="/s/{token}", status="404") == 1
    bucket = "nps_http_request_duration_seconds_bucket"
    assert value(samples, bucket, method="POST", route="/twilio/sms", le="+Inf") == 2
    routes = {dict(labels).get("route") for name, labels in samples if name == count}
    assert not any("not-a-real-token" in str(route) for route in routes)


# --- the outbox and channels ----------------------------------------------------------------------------------


def test_outbox_depth_and_the_age_of_the_oldest_due_row(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    add_contacts(engine, PEOPLE)
    apply_yaml(engine, SMS_ONLY)
    plan(engine)
    later(engine, minutes=10)  # nothing sent meanwhile: a worker down

    samples = scrape(app)
    assert value(samples, "nps_outbox_due", purpose="invitation") == len(PEOPLE)
    assert value(samples, "nps_outbox_oldest_due_age_seconds", purpose="invitation") == 600
    assert value(samples, "nps_outbox_due", purpose="reminder") == 0
    assert value(samples, "nps_outbox_oldest_due_age_seconds", purpose="reminder") == 0

    dispatcher.drain()
    samples = scrape(app)
    assert value(samples, "nps_outbox_due", purpose="invitation") == 0
    assert value(samples, "nps_outbox_oldest_due_age_seconds", purpose="invitation") == 0


def test_a_paused_channel_shows_with_the_send_failure_that_paused_it(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, app: TestClient
) -> None:
    add_contacts(engine, PEOPLE[:2])
    apply_yaml(engine, SMS_ONLY)
    plan(engine)
    fake_twilio.fail_next(20003, times=2)  # a rotated auth token
    dispatcher.drain()

    samples = scrape(app)
    assert value(samples, "nps_channel_paused", channel="sms") == 1
    assert value(samples, "nps_channel_paused", channel="email") == 0
    failed = value(
        samples,
        "nps_messages_failed_total",
        channel="sms",
        purpose="invitation",
        outcome="not_sent",
        code="20003",
    )
    assert failed >= 1
    # Handed back to wait for the pause to end: planned, but not due before then.
    assert value(samples, "nps_invitations", state="planned") == 2
    assert value(samples, "nps_outbox_due", purpose="invitation") == 0


# --- Slack alerts and follow-ups ------------------------------------------------------------------------------


@pytest.fixture
def slack(slack_engine: Container) -> Iterator[TestClient]:
    with TestClient(create_app(slack_engine), base_url=PUBLIC_URL) as client:
        yield client


def test_alerts_posted_pending_and_held_and_follow_ups_open_and_overdue(
    slack_engine: Container, seed: Seeder, fake_slack: FakeSlack, slack: TestClient
) -> None:
    engine = slack_engine
    assert engine.slack is not None
    poster: AlertPoster = engine.slack.poster
    now = engine.clock.now()
    seed.detractor(at=now - timedelta(minutes=15))
    poster.run()
    samples = scrape(slack)
    assert value(samples, "nps_slack_alerts", kind="detractor", state="posted") == 1
    assert value(samples, "nps_slack_alerts_held") == 0
    assert value(samples, "nps_follow_ups", status="open") == 1
    assert value(samples, "nps_follow_ups_overdue") == 0

    fake_slack.refuse_channel(ALERTS, "not_in_channel")
    seed.detractor(at=now - timedelta(minutes=15))  # alerts wait a while for the comment
    poster.run()
    samples = scrape(slack)
    assert value(samples, "nps_slack_alerts", kind="detractor", state="pending") == 1
    assert value(samples, "nps_slack_alerts_held") == 1

    later(engine, days=30)  # past every follow-up's due time
    samples = scrape(slack)
    assert value(samples, "nps_follow_ups", status="open") == 2
    assert value(samples, "nps_follow_ups_overdue") == 2


# --- the scheduler ----------------------------------------------------------------------------------------------


def test_scheduler_job_runs_failures_and_last_success(engine: Container) -> None:
    ticker = Ticker(engine, holder="serve-a")
    try:
        broken = {"times": 0}

        def breaks() -> None:
            broken["times"] += 1
            raise RuntimeError("the job broke")

        ticker.add_job("breaks", breaks)
        ticker.renew_lease()
        ticker.scheduler.get_job("plan").func()
        later(engine, seconds=5)
        ticker.scheduler.get_job("plan").func()
        ticker.scheduler.get_job("breaks").func()
        assert broken["times"] == 1

        with TestClient(create_app(engine, ticker=ticker)) as client:
            samples = scrape(client)
    finally:
        ticker.dispatcher.close()
    assert value(samples, "nps_scheduler_job_runs_total", job="plan") == 2
    assert value(samples, "nps_scheduler_job_failures_total", job="plan") == 0
    assert value(samples, "nps_scheduler_job_runs_total", job="breaks") == 1
    assert value(samples, "nps_scheduler_job_failures_total", job="breaks") == 1
    assert value(samples, "nps_scheduler_job_runs_total", job="lease") == 1
    last = value(samples, "nps_scheduler_job_last_success_timestamp_seconds", job="plan")
    assert last == engine.clock.now().timestamp()
    assert ("nps_scheduler_job_last_success_timestamp_seconds", frozenset({("job", "breaks")})) not in samples
    assert value(samples, "nps_scheduler_leader") == 1


def test_a_standby_scheduler_runs_no_jobs_and_says_it_is_not_the_leader(engine: Container) -> None:
    active, standby = Ticker(engine, holder="serve-a"), Ticker(engine, holder="serve-b")
    try:
        active.renew_lease()
        standby.renew_lease()
        standby.scheduler.get_job("plan").func()
        with TestClient(create_app(engine, ticker=standby)) as client:
            samples = scrape(client)
    finally:
        active.dispatcher.close()
        standby.dispatcher.close()
    assert value(samples, "nps_scheduler_leader") == 0
    assert ("nps_scheduler_job_runs_total", frozenset({("job", "plan")})) not in samples


# --- access and outages ---------------------------------------------------------------------------------------


def test_metrics_are_open_by_default_and_need_the_bearer_token_once_one_is_set(engine: Container) -> None:
    settings = dataclasses.replace(engine.settings, metrics_token=METRICS_TOKEN)
    container = build_container(settings, db=engine.db, clock=engine.clock)
    with TestClient(create_app(container)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        samples = scrape(client, Authorization=f"Bearer {METRICS_TOKEN}")
    assert value(samples, "nps_database_up") == 1


def test_metrics_answer_without_the_database_and_say_it_is_down(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    db = Database.connect(f"sqlite:///{folder}/nps.db")
    upgrade(db.engine)
    container = build_container(Settings(database_url=str(db.engine.url)), db=db)
    with TestClient(create_app(container)) as client:
        assert value(scrape(client), "nps_database_up") == 1
        shutil.rmtree(folder)
        db.dispose()
        samples = scrape(client)
    assert value(samples, "nps_database_up") == 0
    assert not any(name.startswith("nps_invitations") for name, _ in samples)
    assert value(samples, "nps_http_requests_total", method="GET", route="/metrics", status="200") == 1


@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_scrape_answers_while_a_migration_holds_a_table_it_reads(
    engine: Container, app: TestClient, service_log: io.StringIO
) -> None:
    """A scrape reads under the same statement and lock timeout as /readyz: while `nps db upgrade` holds a table,
    it answers `nps_database_up 0` (and this process's own numbers) instead of hanging until Prometheus gives up.

    10 s is a generous bound against a scrape that otherwise never answers while the lock is held.
    """
    with engine.db.engine.connect() as migration, ThreadPoolExecutor(1) as pool:
        locked = migration.begin()
        migration.exec_driver_sql("LOCK TABLE follow_ups IN ACCESS EXCLUSIVE MODE")
        scraping = pool.submit(scrape, app)
        try:
            samples = scraping.result(timeout=10)
        except FutureTimeout:
            samples = None
        finally:
            locked.rollback()
    assert samples is not None, "GET /metrics hung while a table it reads was locked"
    assert value(samples, "nps_database_up") == 0
    assert "metrics: the database could not be read (timed out after 2 s: a table is locked" in (
        service_log.getvalue()
    )
    assert value(scrape(app), "nps_database_up") == 1
