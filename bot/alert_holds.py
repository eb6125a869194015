"""Channels Slack refuses (`not_in_channel`, `channel_not_found`, `is_archived`): their alerts are held, not failed.

Such an error is about the channel, not the alert: every alert to that channel would fail alike until someone
invites the bot back or fixes the channel id. So the poster holds that channel's pending alerts (`held_channel`
set, `next_attempt_at` a pause ahead; they stay "pending", only later), retries the oldest after the pause, and
alerts queued meanwhile join the hold instead of overtaking it, so the channel's order is kept. Only that channel
waits: a broken kudos channel must not silence detractor alerts. `outbox_health` says what is held and why.

When Slack refuses the app itself (`invalid_auth`, `missing_scope`, ...; `bot.slack_answers.SETUP`) the whole queue
waits; the alert that was refused is marked held on `APP_HOLD`, so that readiness and `nps alerts` say so too.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update

from bot.slack_answers import CHANNEL_PAUSE
from storage.db import Database
from storage.enums import AlertKind, AlertState
from storage.tables import SlackAlert

log = logging.getLogger("bot.poster")  # one logger for the outbox: operators follow one name


APP_HOLD = "*"
"""`held_channel` of an alert Slack refused because of the app's setup: every channel waits, not one."""

Holds = dict[str, tuple[datetime, str]]
"""Held channels of a run: channel id -> (held until, reason)."""


@dataclass(frozen=True)
class HeldChannel:
    channel: str
    alerts: int
    reason: str
    until: datetime


@dataclass(frozen=True)
class OutboxHealth:
    """What is stuck in the alert outbox: held channels (each says why), alerts for review and failed ones."""

    held: list[HeldChannel]
    review: int
    failed: int

    @property
    def degraded(self) -> bool:
        return bool(self.held or self.review)


def outbox_health(db: Database) -> OutboxHealth:
    """Held channels with their reason, and how many alerts wait for review or failed (for readiness)."""
    with db.transaction() as session:
        rows = session.execute(
            select(SlackAlert.held_channel, SlackAlert.last_error, SlackAlert.next_attempt_at)
            .where(SlackAlert.state == AlertState.PENDING, SlackAlert.held_channel.is_not(None))
            .order_by(SlackAlert.id)
        ).all()
        counts = dict(
            session.execute(
                select(SlackAlert.state, func.count())
                .where(SlackAlert.state.in_([AlertState.REVIEW, AlertState.FAILED]))
                .group_by(SlackAlert.state)
            ).all()
        )
        # Slack refusing the app holds the whole queue: every waiting alert counts.
        waiting = (
            session.scalar(
                select(func.count())
                .select_from(SlackAlert)
                .where(SlackAlert.state.in_([AlertState.PENDING, AlertState.UNCERTAIN]))
            )
            if any(channel == APP_HOLD for channel, _, _ in rows)
            else 0
        )
    held: dict[str, HeldChannel] = {}
    for channel, reason, until in rows:
        seen = held.get(str(channel))
        first = seen.reason if seen else reason or ""
        held[str(channel)] = HeldChannel(str(channel), (seen.alerts if seen else 0) + 1, first, until)
    if APP_HOLD in held:
        held[APP_HOLD] = dataclasses.replace(held[APP_HOLD], alerts=waiting or 0)
    return OutboxHealth(
        list(held.values()), counts.get(AlertState.REVIEW, 0), counts.get(AlertState.FAILED, 0)
    )


class ChannelHolds:
    """The holds, read and written by compare-and-set on "pending"; `defaults` are the configured channels
    that alerts with channel "" go to (alerts, kudos)."""

    def __init__(self, db: Database, *, alerts: str | None, kudos: str | None) -> None:
        self.db = db
        self.alerts = alerts
        self.kudos = kudos

    def target(self, alert: SlackAlert) -> str | None:
        return alert.channel or self.default_for(alert.kind)

    def default_for(self, kind: str) -> str | None:
        """The configured channel of an alert queued with channel "" (SLACK_KUDOS_CHANNEL, SLACK_ALERT_CHANNEL)."""
        return self.kudos if kind == AlertKind.KUDOS else self.alerts

    def current(self, now: datetime) -> Holds:
        with self.db.transaction() as session:
            rows = session.execute(
                select(SlackAlert.held_channel, SlackAlert.next_attempt_at, SlackAlert.last_error)
                .where(
                    SlackAlert.state == AlertState.PENDING,
                    SlackAlert.held_channel.is_not(None),
                    SlackAlert.next_attempt_at > now,
                )
                .order_by(SlackAlert.id)
            ).all()
        held: Holds = {}
        for channel, until, reason in rows:
            held.setdefault(str(channel), (until, reason or ""))
        return held

    def hold(self, target: str, reason: str, now: datetime, held: Holds) -> None:
        """Hold every pending alert to this channel, so that none is burnt on it and the order is kept."""
        until = now + timedelta(seconds=CHANNEL_PAUSE)
        with self.db.transaction() as session:
            count = len(
                session.scalars(
                    update(SlackAlert)
                    .where(self.of_channel(target), SlackAlert.state == AlertState.PENDING)
                    .values(held_channel=target, next_attempt_at=until, last_error=reason)
                    .returning(SlackAlert.id)
                    .execution_options(synchronize_session=False)
                ).all()
            )
        held[target] = (until, reason)
        log.error(
            "Slack alerts to channel %s held (%s alerts): %s. Invite the bot to the channel (/invite @NPS) or "
            "fix the channel id; they are retried every %s min, `nps alerts` lists them",
            target,
            count,
            reason,
            CHANNEL_PAUSE // 60,
        )

    def wait_behind(self, alert_id: int, now: datetime, held: Holds) -> bool:
        """An alert due for a held channel joins the hold instead of overtaking it; True if it did."""
        if not held:
            return False
        with self.db.transaction() as session:
            alert = session.get(SlackAlert, alert_id)
            target = self.target(alert) if alert else None
            if target is None or target not in held or held[target][0] <= now:
                return False
            until, reason = held[target]
            session.execute(
                update(SlackAlert)
                .where(SlackAlert.id == alert_id, SlackAlert.state == AlertState.PENDING)
                .values(held_channel=target, next_attempt_at=until, last_error=reason)
                .execution_options(synchronize_session=False)
            )
        return True

    def of_channel(self, target: str, alerts: Any = SlackAlert) -> ColumnElement[bool]:
        """Alerts (of `alerts`: the table or an alias of it) that go to `target`: named it, or left "" for the
        configured channel it is."""
        mine = [alerts.channel == target]
        if target == self.alerts:
            mine.append(and_(alerts.channel == "", alerts.kind != AlertKind.KUDOS))
        if target == self.kudos:
            mine.append(and_(alerts.channel == "", alerts.kind == AlertKind.KUDOS))
        return or_(*mine)
