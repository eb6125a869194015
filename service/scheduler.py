"""The one scheduler of a deployment: APScheduler 3 ticks that plan, dispatch, remind and expire.

The scheduler only decides *when* work happens; the database decides *what* is done, so a missed or doubled
tick is harmless: every job catches up from the rows. Jobs live in memory (they are rebuilt from code at
start), and a database lease keeps the ticking to one process even if `nps serve` is started twice; extra
processes stand by and take over when the holder stops renewing. Dispatch alone scales out with `nps worker`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from campaigns.dispatch.dispatcher import Dispatcher, default_worker_id
from campaigns.dispatch.expiry import expire_invitations
from campaigns.planning.planner import plan_recurring
from storage.enums import MessagePurpose
from storage.leases import acquire_or_renew, release

if TYPE_CHECKING:
    from service.container import Container

log = logging.getLogger(__name__)

LEASE = "scheduler"


class Ticker:
    """Owns the APScheduler instance and the lease; later features add jobs with `add_job`."""

    def __init__(self, container: Container, *, holder: str | None = None) -> None:
        self.container = container
        self.holder = holder or default_worker_id()
        self.tick = timedelta(seconds=container.settings.tick_seconds)
        self.dispatcher: Dispatcher = container.new_dispatcher(worker_id=self.holder)
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(self.tick.total_seconds()),
            },
        )
        self.leader = False
        self.add_job(
            "lease", self.renew_lease, IntervalTrigger(seconds=self.tick.total_seconds(), timezone=UTC)
        )
        self.add_job("plan", self.plan)
        self.add_job("dispatch", self.dispatch)
        self.add_job("reminders", self.remind)
        self.add_job("expiry", self.expire, IntervalTrigger(minutes=1, timezone=UTC))
        if container.settings.slack_enabled:
            self._add_slack_jobs()

    def _add_slack_jobs(self) -> None:
        from bot.app import alert_poster  # Slack is optional: imported only when configured
        from campaigns.followups.deadlines import check_follow_ups

        self.poster = alert_poster(self.container)
        self.add_job("slack_alerts", self.poster.run)
        self.add_job(
            "follow_ups",
            lambda: check_follow_ups(
                self.container.db,
                now=self.container.clock.now(),
                unacknowledged_after=timedelta(hours=self.container.settings.escalate_unacknowledged_hours),
            ),
            IntervalTrigger(minutes=1, timezone=UTC),
        )
        if self.container.settings.slack_digest_channel:
            zone = ZoneInfo(self.container.settings.timezone)
            self.add_job("digest", self.post_digest, CronTrigger(day_of_week="mon", hour=9, timezone=zone))

    def post_digest(self) -> None:
        from bot.app import slack_client
        from bot.digest import digest_blocks

        settings = self.container.settings
        if not settings.slack_digest_channel:
            return
        with self.container.db.transaction() as session:
            blocks = digest_blocks(
                session=session, now=self.container.clock.now(), tz=ZoneInfo(settings.timezone)
            )
        slack_client(self.container).chat_postMessage(
            channel=settings.slack_digest_channel, text="Weekly NPS digest", blocks=blocks
        )

    def add_job(self, job_id: str, func: Callable[[], Any], trigger: BaseTrigger | None = None) -> None:
        """Register a job under a stable id; it runs only while this process holds the scheduler lease."""
        trigger = trigger or IntervalTrigger(seconds=self.tick.total_seconds(), timezone=UTC)
        guarded = func if job_id == "lease" else self._only_when_leader(job_id, func)
        # Interval jobs run right away too: after a restart, catching up should not wait a tick.
        first = datetime.now(UTC) if isinstance(trigger, IntervalTrigger) else None
        options = {"next_run_time": first} if first else {}
        self.scheduler.add_job(guarded, trigger, id=job_id, name=job_id, replace_existing=True, **options)

    def start(self) -> None:
        self.renew_lease()
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=True)
        self.dispatcher.close()
        if self.leader:
            release(self.container.db, LEASE, self.holder)

    # --- jobs ----------------------------------------------------------------------------------------------

    def renew_lease(self) -> None:
        was_leader = self.leader
        self.leader = acquire_or_renew(
            self.container.db, LEASE, self.holder, now=self.container.clock.now(), ttl=3 * self.tick
        )
        if self.leader != was_leader:
            log.info(
                "scheduler %s",
                "active (lease taken)" if self.leader else "standing by: another process holds the lease",
            )

    def plan(self) -> None:
        stats = plan_recurring(
            self.container.db, now=self.container.clock.now(), rules=self.container.planning_rules
        )
        if stats.planned or stats.skipped:
            log.info(
                "planned %d invitations, skipped %d %s", stats.planned, stats.skipped, stats.skipped_by_reason
            )

    def dispatch(self) -> None:
        stats = self.dispatcher.drain()
        if stats.claimed:
            log.info("dispatch: %s", stats)

    def remind(self) -> None:
        stats = self.dispatcher.drain(MessagePurpose.REMINDER)
        if stats.claimed:
            log.info("reminders: %s", stats)

    def expire(self) -> None:
        expire_invitations(self.dispatcher)

    def _only_when_leader(self, job_id: str, func: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            if not self.leader:
                return
            try:
                func()
            except Exception:
                log.exception("scheduled job %s failed; it runs again at the next tick", job_id)

        return run
