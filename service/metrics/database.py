"""The metrics the database knows: read at scrape time, so that every process's work is counted once.

Sends happen in `nps serve` and in any number of `nps worker` processes, which serve no HTTP; counting them in
memory would show only the scraped process's share and lose it at every restart. The rows are the truth
(`Message` for every send, `Response` for every score), so each scrape asks the database with a few aggregate
queries (`GROUP BY`, `count`, `min`) that return a handful of rows whatever the table sizes, on one connection
that gives up after :data:`READ_TIMEOUT` (`storage.bounded`), like `/readyz`. When the database does not answer,
the scrape still succeeds with `nps_database_up 0` and nothing else from here.

Totals that only grow (messages, replies, responses) are exposed as counters (`..._total`): `rate()` and
`increase()` work on them. Erasing a person's data (which deletes rows) makes one drop; Prometheus takes that as
a counter reset. States that come and go (invitations by state, follow-ups open) are gauges.

Every value of an enum label is exposed, zeros included, so an alert on a series that should stay at 0 has a
series to watch from the start.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.alert_holds import APP_HOLD
from campaigns.clock import Clock
from campaigns.dispatch.outbox import FLOWS
from storage.bounded import bounded_reads, timed_out
from storage.db import Database
from storage.enums import (
    AlertKind,
    AlertState,
    Category,
    Channel,
    ConsentStatus,
    DeliveryStatus,
    Direction,
    FollowUpStatus,
    InvitationState,
    MessagePurpose,
    SendState,
)
from storage.tables import ChannelPause, Consent, FollowUp, Invitation, Message, Response, SlackAlert

log = logging.getLogger(__name__)

# As long as /readyz waits: a scrape should answer well inside Prometheus's default 10 s scrape timeout.
READ_TIMEOUT = timedelta(seconds=2)
# The provider took it: by its REST API, or as the TwiML answer to an inbound SMS.
_TAKEN = (SendState.SENT, SendState.TWIML)
# Why an outbound message did not reach its person, by what we or the provider recorded.
_SEND_FAILURES = {
    SendState.REJECTED: "rejected",  # permanent: this address will not work on this channel
    SendState.FAILED: "retried",  # temporary: the invitation goes out again later
    SendState.NOT_SENT: "not_sent",  # our setup (a refused token) or a claim too old: nothing went out
}
_UNDELIVERED = (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)
_OUTBOUND = (MessagePurpose.INVITATION, MessagePurpose.REMINDER, MessagePurpose.CONVERSATION)
_OUTBOUND_PURPOSES = (*_OUTBOUND, MessagePurpose.CLARIFICATION)


@dataclass(frozen=True)
class MessageGroup:
    """One row of the messages aggregate: how many messages share these values."""

    direction: Direction
    channel: Channel
    purpose: MessagePurpose
    send_state: SendState | None
    delivery_status: DeliveryStatus | None
    error_code: str | None
    count: int


class DatabaseCollector(Collector):
    """A prometheus-client collector over the database; registered once per process (`service.metrics`)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        """Nothing: registering must not query the database (prometheus-client calls collect() otherwise)."""
        return []

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        try:
            with bounded_reads(self.db, READ_TIMEOUT) as bounded, bounded.transaction() as session:
                families = list(read_families(session, now))
        except Exception as error:  # unreachable, locked by a migration, a table missing on an old schema
            log.warning("metrics: the database could not be read (%s); nps_database_up is 0", _why(error))
            families = []
        yield GaugeMetricFamily(
            "nps_database_up",
            "1 when this scrape could read the database, 0 otherwise",
            value=int(bool(families)),
        )
        yield from families


def _why(error: Exception) -> str:
    """A short reason: SQLAlchemy's own text repeats the whole statement."""
    if isinstance(error, OperationalError) and timed_out(error):
        seconds = READ_TIMEOUT.total_seconds()
        return f"timed out after {seconds:.0f} s: a table is locked (a migration running?) or the database is slow"
    return type(error).__name__


def read_families(session: Session, now: datetime) -> Iterator[Metric]:
    yield from _invitations(session, now)
    yield from _messages(session)
    yield _responses(session)
    yield _opt_outs(session)
    yield from _slack_alerts(session)
    yield from _follow_ups(session, now)
    yield _channel_pauses(session)


def _invitations(session: Session, now: datetime) -> Iterator[Metric]:
    counts = dict(session.execute(select(Invitation.state, func.count()).group_by(Invitation.state)).all())
    states = GaugeMetricFamily("nps_invitations", "Invitations by outbox state", labels=["state"])
    for state in InvitationState:
        states.add_metric([state.value], counts.get(state, 0))
    yield states
    due = GaugeMetricFamily(
        "nps_outbox_due", "Sends due now and not yet claimed (the outbox's depth)", labels=["purpose"]
    )
    age = GaugeMetricFamily(
        "nps_outbox_oldest_due_age_seconds",
        "How long the oldest due send has waited (0 when none is due): grows while no worker sends",
        labels=["purpose"],
    )
    for purpose, flow in FLOWS.items():
        depth, oldest = session.execute(
            select(func.count(), func.min(flow.order)).where(*flow.due(now))
        ).one()
        due.add_metric([purpose.value], depth)
        age.add_metric([purpose.value], (now - oldest).total_seconds() if oldest is not None else 0)
    yield due
    yield age


def message_groups(session: Session) -> list[MessageGroup]:
    columns = (
        Message.direction,
        Message.channel,
        Message.purpose,
        Message.send_state,
        Message.delivery_status,
        Message.error_code,
    )
    rows = session.execute(select(*columns, func.count()).group_by(*columns)).all()
    return [MessageGroup(*row) for row in rows]


def _messages(session: Session) -> Iterator[Metric]:
    groups = message_groups(session)
    sent: Counter[tuple[str, str]] = Counter(
        {(c.value, p.value): 0 for c in Channel for p in _OUTBOUND_PURPOSES}
    )
    failed: Counter[tuple[str, str, str, str]] = Counter()
    received: Counter[tuple[str]] = Counter({(c.value,): 0 for c in Channel})
    clarified: Counter[tuple[str]] = Counter({(c.value,): 0 for c in Channel})
    for group in groups:
        channel, purpose = group.channel.value, group.purpose.value
        if group.direction is Direction.INBOUND:
            if group.purpose is MessagePurpose.REPLY:
                received[channel,] += group.count
            continue
        code = group.error_code or "none"
        if group.send_state in _TAKEN:
            sent[channel, purpose] += group.count
            if group.purpose is MessagePurpose.CLARIFICATION:
                clarified[channel,] += group.count
            if group.delivery_status in _UNDELIVERED:
                failed[channel, purpose, "undelivered", code] += group.count
        elif group.send_state in _SEND_FAILURES:
            failed[channel, purpose, _SEND_FAILURES[group.send_state], code] += group.count
    yield _counter(
        "nps_messages_sent",
        "Outbound messages the provider took, by channel and purpose",
        ["channel", "purpose"],
        sent.items(),
    )
    yield _counter(
        "nps_messages_failed",
        "Outbound messages that did not reach their person, by outcome "
        "(rejected, retried, not_sent, undelivered) and the provider's error code",
        ["channel", "purpose", "outcome", "code"],
        failed.items(),
    )
    yield _counter("nps_replies_received", "Inbound replies (SMS)", ["channel"], received.items())
    yield _counter(
        "nps_replies_clarified",
        "Replies answered with the one 'please answer with a number'",
        ["channel"],
        clarified.items(),
    )


def _responses(session: Session) -> Metric:
    rows = session.execute(
        select(Response.channel, Response.category, func.count()).group_by(
            Response.channel, Response.category
        )
    ).all()
    counts: Counter[tuple[str, str]] = Counter({(c.value, k.value): 0 for c in Channel for k in Category})
    for channel, category, count in rows:
        counts[Channel(channel).value, Category(category).value] += count
    return _counter(
        "nps_responses",
        "Scores recorded (parsed replies and survey pages), by category",
        ["channel", "category"],
        counts.items(),
    )


def _opt_outs(session: Session) -> Metric:
    rows = session.execute(
        select(Consent.channel, Consent.source, func.count())
        .where(Consent.status == ConsentStatus.OPTED_OUT)
        .group_by(Consent.channel, Consent.source)
    ).all()
    family = GaugeMetricFamily(
        "nps_opted_out_addresses",
        "Addresses opted out now, by channel and how (sms:stop, email:one-click, twilio-21610, ...)",
        labels=["channel", "source"],
    )
    for channel, source, count in rows:
        family.add_metric([Channel(channel).value, source], count)
    return family


def _slack_alerts(session: Session) -> Iterator[Metric]:
    rows = session.execute(
        select(SlackAlert.kind, SlackAlert.state, func.count()).group_by(SlackAlert.kind, SlackAlert.state)
    ).all()
    counts = {(AlertKind(kind), AlertState(state)): count for kind, state, count in rows}
    family = GaugeMetricFamily(
        "nps_slack_alerts", "Slack messages owed or posted, by kind and state", labels=["kind", "state"]
    )
    for kind in AlertKind:
        for state in AlertState:
            family.add_metric([kind.value, state.value], counts.get((kind, state), 0))
    yield family
    yield GaugeMetricFamily(
        "nps_slack_alerts_held",
        "Alerts waiting on a channel Slack refuses (every waiting alert when Slack refuses the app)",
        value=_held_alerts(session),
    )


def _held_alerts(session: Session) -> int:
    """As `bot.alert_holds.outbox_health` counts them, with two counts instead of reading the held rows."""
    waiting = SlackAlert.state == AlertState.PENDING
    held = session.scalar(select(func.count()).where(waiting, SlackAlert.held_channel.is_not(None))) or 0
    app_refused = (
        session.scalar(select(func.count()).where(waiting, SlackAlert.held_channel == APP_HOLD)) or 0
    )
    if not app_refused:
        return held
    everything = SlackAlert.state.in_([AlertState.PENDING, AlertState.UNCERTAIN])
    return session.scalar(select(func.count()).where(everything)) or 0


def _follow_ups(session: Session, now: datetime) -> Iterator[Metric]:
    counts = dict(session.execute(select(FollowUp.status, func.count()).group_by(FollowUp.status)).all())
    family = GaugeMetricFamily("nps_follow_ups", "Follow-ups of detractors by status", labels=["status"])
    for status in FollowUpStatus:
        family.add_metric([status.value], counts.get(status, 0))
    yield family
    overdue = session.scalar(
        select(func.count()).where(FollowUp.status != FollowUpStatus.RESOLVED, FollowUp.due_at < now)
    )
    yield GaugeMetricFamily(
        "nps_follow_ups_overdue", "Follow-ups not resolved by their due time", value=overdue or 0
    )


def _channel_pauses(session: Session) -> Metric:
    paused = {Channel(channel) for channel in session.scalars(select(ChannelPause.channel))}
    family = GaugeMetricFamily(
        "nps_channel_paused",
        "1 while no worker sends on the channel (the provider refused our setup)",
        labels=["channel"],
    )
    for channel in Channel:
        family.add_metric([channel.value], int(channel in paused))
    return family


def _counter(
    name: str, documentation: str, labels: list[str], counts: Iterable[tuple[tuple[str, ...], int]]
) -> Metric:
    """A counter family from totals keyed by their label values (in `labels`' order)."""
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, count in sorted(counts):
        family.add_metric(list(key), count)
    return family
