"""The one scheduler per deployment: a database lease, standby processes, and real APScheduler ticks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.clock import ManualClock, SystemClock
from service.container import Container, build_container
from service.scheduler import Ticker
from service.settings import Settings
from storage.db import Database
from tests.fixtures.engine import add_contacts, apply_yaml
from tests.standins.fake_twilio import FakeTwilio

ALWAYS = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1  # phase 0: due at once
    channels: [sms]
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""


def test_only_one_process_ticks_and_a_standby_takes_over(engine: Container) -> None:
    first, second = Ticker(engine, holder="serve-a"), Ticker(engine, holder="serve-b")
    try:
        first.renew_lease()
        second.renew_lease()
        assert (first.leader, second.leader) == (True, False)
        engine.clock.advance(seconds=engine.settings.tick_seconds)  # type: ignore[attr-defined]
        first.renew_lease()
        second.renew_lease()
        assert (first.leader, second.leader) == (True, False)
        # serve-a stops renewing (crashed); after the lease runs out serve-b takes over.
        engine.clock.advance(seconds=3 * engine.settings.tick_seconds + 1)  # type: ignore[attr-defined]
        second.renew_lease()
        first.renew_lease()
        assert (first.leader, second.leader) == (False, True)
    finally:
        first.dispatcher.close()
        second.dispatcher.close()


def test_a_standby_runs_no_jobs(engine: Container, fake_twilio: FakeTwilio) -> None:
    add_contacts(engine, [{"external_id": "a", "phone": "+4915112345678"}])
    apply_yaml(engine, ALWAYS)
    leader, standby = Ticker(engine, holder="a"), Ticker(engine, holder="b")
    try:
        leader.renew_lease()
        standby.renew_lease()
        for job_id in ("plan", "dispatch"):
            standby.scheduler.get_job(job_id).func()
        assert fake_twilio.count() == 0
        for job_id in ("plan", "dispatch"):
            leader.scheduler.get_job(job_id).func()
        assert fake_twilio.count() == 1
    finally:
        leader.dispatcher.close()
        standby.dispatcher.close()


def test_the_started_scheduler_plans_and_sends_on_its_own(
    engine_settings: Settings, db: Database, fake_twilio: FakeTwilio
) -> None:
    settings = dataclasses.replace(engine_settings, tick_seconds=1)
    container = build_container(settings, db=db, clock=SystemClock())
    setup = build_container(settings, db=db, clock=ManualClock(datetime.now(UTC) - timedelta(minutes=1)))
    add_contacts(setup, [{"external_id": "a", "phone": "+4915112345678"}])
    apply_yaml(setup, ALWAYS)
    ticker = Ticker(container, holder="serve")
    ticker.start()
    try:
        [sms] = fake_twilio.wait_for(1, timeout=15)
        assert sms["To"] == "+4915112345678"
        assert {job.id for job in ticker.scheduler.get_jobs()} == {
            "lease",
            "plan",
            "dispatch",
            "reminders",
            "expiry",
            "inbound",
        }
    finally:
        ticker.shutdown()


@contextmanager
def leases_unreachable(db: Database) -> Iterator[None]:
    """A database fault for the lease alone: its table is renamed away by another connection, then restored."""
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE leases RENAME TO leases_away")
    try:
        yield
    finally:
        with db.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE leases_away RENAME TO leases")


def test_a_failed_lease_renewal_stops_the_jobs_at_once(
    engine: Container, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    add_contacts(engine, [{"external_id": "a", "phone": "+4915112345678"}])
    apply_yaml(engine, ALWAYS)
    ticker = Ticker(engine, holder="serve-a")
    try:
        ticker.renew_lease()
        assert ticker.leader
        with leases_unreachable(engine.db):
            ticker.renew_lease()  # fails closed: no exception escapes, and the process stops acting
        assert not ticker.leader
        assert "could not renew the scheduler lease" in caplog.text
        for job_id in ("plan", "dispatch"):
            ticker.scheduler.get_job(job_id).func()
        assert fake_twilio.count() == 0
        # Once the database answers again, the next renewal takes the lease back and work resumes.
        ticker.renew_lease()
        assert ticker.leader
        for job_id in ("plan", "dispatch"):
            ticker.scheduler.get_job(job_id).func()
        assert fake_twilio.count() == 1
    finally:
        ticker.dispatcher.close()


def test_a_leader_whose_renewals_stall_stops_before_its_lease_runs_out(
    engine: Container, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [{"external_id": "a", "phone": "+4915112345678"}])
    apply_yaml(engine, ALWAYS)
    ticker = Ticker(engine, holder="serve-a")
    try:
        ticker.renew_lease()
        # No renewal for longer than the lease: another process may hold it by now, so this one must not act.
        engine.clock.advance(seconds=3 * engine.settings.tick_seconds)  # type: ignore[attr-defined]
        for job_id in ("plan", "dispatch"):
            ticker.scheduler.get_job(job_id).func()
        assert fake_twilio.count() == 0
    finally:
        ticker.dispatcher.close()
