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

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.deps import SlackDeps
from bot.digest import post_digest
from bot.notices import AdminNotices
from campaigns.dispatch.dispatcher import Dispatcher, default_worker_id
from campaigns.dispatch.expiry import expire_invitations
from campaigns.followups.deadlines import check_follow_ups
from campaigns.planning.planner import plan_recurring
from campaigns.planning.recovery import plan_recoveries
from campaigns.replies.inbound import sweep_inbound
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
        self.leader_until: datetime | None = None
        # For readiness: when the lease job last ran (the scheduler's heartbeat) and why its renewal failed.
        self.last_tick: datetime | None = None
        self.lease_error: str | None = None
        container.metrics.watch_scheduler(self.is_leader)
        self.add_job(
            "lease", self.renew_lease, IntervalTrigger(seconds=self.tick.total_seconds(), timezone=UTC)
        )
        self.add_job("plan", self.plan)
        self.add_job("dispatch", self.dispatch)
        self.add_job("reminders", self.remind)
        self.add_job("expiry", self.expire, IntervalTrigger(minutes=1, timezone=UTC))
        self.add_job("inbound", self.sweep_inbound, IntervalTrigger(minutes=1, timezone=UTC))
        if container.slack is not None:
            self._add_slack_jobs(container.slack)

    def _add_slack_jobs(self, slack: SlackDeps) -> None:
        """The alert outbox, follow-up deadlines and the digest, with the poster the Slack app uses too."""
        self.add_job("slack_alerts", slack.poster.run)
        self.add_job("follow_ups", self.check_follow_ups, IntervalTrigger(minutes=1, timezone=UTC))
        if slack.digest_channel:
            trigger = CronTrigger(day_of_week="mon", hour=9, timezone=slack.timezone)
            self.add_job("digest", self.post_digest, trigger)
        admin_channel = self.container.settings.slack_admin_channel
        if admin_channel:
            notices = AdminNotices(slack.db, slack.client, channel=admin_channel, clock=slack.clock)
            self.add_job("admin_notices", notices.post_due)

    def post_digest(self) -> None:
        if self.container.slack is not None:
            post_digest(self.container.slack)

    def check_follow_ups(self) -> None:
        check_follow_ups(
            self.container.db,
            now=self.container.clock.now(),
            unacknowledged_after=timedelta(hours=self.container.settings.escalate_unacknowledged_hours),
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
        """Take or keep the lease; on any failure stop acting as the scheduler at once (fail closed).

        A process that cannot renew must assume that another one may hold the lease when it runs out; running on
        would mean two schedulers (double planning, doubled escalations and digests).
        """
        was_leader = self.leader
        now = self.container.clock.now()
        ttl = 3 * self.tick
        self.last_tick = now
        try:
            held = acquire_or_renew(self.container.db, LEASE, self.holder, now=now, ttl=ttl)
            self.lease_error = None
        except Exception as error:
            log.exception("could not renew the scheduler lease; standing by until the database answers")
            held = False
            self.lease_error = type(error).__name__
        # Renewal runs once a tick, well inside the lease; a process whose renewals stall stops acting one tick
        # before the lease runs out, so that it never overlaps with the process that takes over.
        self.leader_until = now + ttl - self.tick if held else None
        self.leader = held
        self.container.metrics.job_ran("lease", ok=self.lease_error is None)
        if self.leader != was_leader:
            log.info(
                "scheduler %s",
                "active (lease taken)" if self.leader else "standing by: another process holds the lease",
            )

    def is_leader(self) -> bool:
        return (
            self.leader and self.leader_until is not None and self.container.clock.now() < self.leader_until
        )

    def plan(self) -> None:
        stats = plan_recurring(
            self.container.db, now=self.container.clock.now(), rules=self.container.planning_rules
        )
        if stats.planned or stats.skipped:
            log.info(
                "planned %d invitations, skipped %d %s", stats.planned, stats.skipped, stats.skipped_by_reason
            )
        recovery = plan_recoveries(
            self.container.db, now=self.container.clock.now(), rules=self.container.planning_rules
        )
        if recovery.planned or recovery.skipped:
            log.info(
                "planned %d recovery re-surveys, skipped %d %s",
                recovery.planned,
                recovery.skipped,
                recovery.skipped_by_reason,
            )

    def dispatch(self) -> None:
        stats = self.dispatcher.drain()
        if stats.claimed:
            log.info("%s", stats.summary("surveys"))

    def remind(self) -> None:
        stats = self.dispatcher.drain(MessagePurpose.REMINDER)
        if stats.claimed:
            log.info("%s", stats.summary("reminders"))

    def expire(self) -> None:
        expire_invitations(self.dispatcher)

    def sweep_inbound(self) -> None:
        """Replies stored but left unhandled (Twilio does not retry a failed webhook by default)."""
        sweep_inbound(self.container.db, self.container.transports, clock=self.container.clock)

    def _only_when_leader(self, job_id: str, func: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            if not self.is_leader():
                return
            try:
                func()
            except Exception:
                log.exception("scheduled job %s failed; it runs again at the next tick", job_id)
                self.container.metrics.job_ran(job_id, ok=False)
            else:
                self.container.metrics.job_ran(job_id, ok=True)

        return run
