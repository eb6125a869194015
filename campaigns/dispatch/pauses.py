"""Channel pauses: when a provider refuses our own setup, or is down for everyone, the channel stops for all.

A rotated Twilio token, a refused sender or an outage says nothing about the people we are texting; met by
every due invitation in turn, it used to burn the whole outbox. Instead:

- A pause is a row in `channel_pauses`, one per channel, so every worker of every process sees it at its next
  batch and health checks can read it (`channel_pauses`). While its `until` is ahead, invitations due on that
  channel are handed back, due at `until`, without counting an attempt.
- Once `until` has passed, one worker wins the probe (a compare-and-set on `until`) and sends one message; the
  others wait for it. A probe that goes out, or is refused only for its recipient, proves the channel works:
  the row is deleted and sending resumes by itself. The same failure again pauses for twice as long
  (`FIRST_PAUSE` doubling to `MAX_PAUSE`).
- Causes, seen by this process's `ChannelHealth` while a batch is sent: a ChannelSetupError (credentials,
  account, sender) at once; a provider-wide outage as `OUTAGE_STREAK` failures in a row (429, 5xx, timeouts,
  unreachable) with no success in between; a Retry-After longer than `SHORT_RETRY_AFTER`, for at least that
  long. Sends of the batch not yet started are held as soon as the cause is seen.

Where an admin channel is configured, the dispatcher announces a pause when it begins and when it is lifted
(`pause_notice`, `resume_notice`, queued with `storage.notices.announce` in the transaction that pauses or
resumes), never per failed probe.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.channels.base import (
    ChannelSetupError,
    PermanentSendError,
    SendError,
    TemporarySendError,
    UncertainSendError,
)
from campaigns.privacy import mask_text
from campaigns.ratelimit import backoff_delay
from storage.enums import Channel
from storage.tables import ChannelPause

FIRST_PAUSE = 60.0  # seconds; doubled per failed probe
MAX_PAUSE = 900.0  # a fixed token is noticed within a quarter of an hour
OUTAGE_STREAK = 10  # failures in a row that make a provider-wide outage
SHORT_RETRY_AFTER = 5.0  # seconds: waited in this process (the token bucket); a longer one pauses the channel


@dataclass(frozen=True)
class PauseView:
    """A channel's pause as stored."""

    channel: Channel
    code: str | None
    reason: str
    since: datetime
    until: datetime
    probes: int


@dataclass(frozen=True)
class Hold:
    """Why this process stopped sending on a channel during the current batch."""

    code: str | None
    reason: str
    at_least: float = 0.0  # seconds the provider asked us to wait (Retry-After)


def channel_pauses(*, session: Session) -> list[PauseView]:
    """Every paused channel, including one waiting for its probe: it is not known to work until one passes."""
    rows = session.scalars(select(ChannelPause).order_by(ChannelPause.channel))
    return [PauseView(r.channel, r.code, r.reason, r.since, r.until, r.probes) for r in rows]


def pause_channel(channel: Channel, hold: Hold, now: datetime, *, session: Session) -> PauseView:
    """Pause `channel`, or pause it longer (a failed probe: twice as long); returns the pause as stored."""
    first = {
        "channel": channel,
        "code": hold.code,
        "reason": hold.reason,
        "since": now,
        "until": now + _length(0, hold),
        "probes": 0,
    }
    if not _insert_if_missing(session, first):
        seen = session.get(ChannelPause, channel, populate_existing=True)
        if seen is None:  # another worker resumed it in between
            _insert_if_missing(session, first)
        else:
            # Compare-and-set on the count: of two workers extending at once, one extension is enough.
            probes = seen.probes + 1
            session.execute(
                update(ChannelPause)
                .where(ChannelPause.channel == channel, ChannelPause.probes == seen.probes)
                .values(
                    code=hold.code,
                    reason=hold.reason,
                    probes=probes,
                    until=max(seen.until, now + _length(probes, hold)),
                )
                .execution_options(synchronize_session=False)
            )
    row = session.get(ChannelPause, channel, populate_existing=True)
    assert row is not None
    return PauseView(row.channel, row.code, row.reason, row.since, row.until, row.probes)


def pause_subject(channel: Channel) -> str:
    """The channel's subject for admin notices (`storage.notices`)."""
    return f"channel:{channel.value}"


def pause_notice(pause: PauseView) -> str:
    """What the admin channel is told when a pause begins; masked, as a provider's text may quote an address."""
    code = f" (error {pause.code})" if pause.code else ""
    return mask_text(
        f"{_NAMES[pause.channel]} sending is paused{code}: {pause.reason}. Invitations stay planned; a probe "
        f"goes out at {pause.until:%H:%M} UTC and sending resumes by itself once one goes through."
    )


def resume_notice(channel: Channel) -> str:
    return f"{_NAMES[channel]} sending works again: the pause is lifted."


_NAMES = {Channel.SMS: "SMS", Channel.EMAIL: "Email"}


def take_probe(pause: PauseView, now: datetime, wait: timedelta, *, session: Session) -> bool:
    """Whether this worker sends the probe of an elapsed pause; the others see `until` move by `wait` (as long as
    the probe can take to leave and be answered) and wait."""
    taken = session.execute(
        update(ChannelPause)
        .where(ChannelPause.channel == pause.channel, ChannelPause.until == pause.until)
        .values(until=now + wait)
        .execution_options(synchronize_session=False)
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def resume(channel: Channel, *, session: Session) -> bool:
    """The channel works again; False when another worker had already resumed it."""
    deleted = session.execute(
        delete(ChannelPause)
        .where(ChannelPause.channel == channel)
        .execution_options(synchronize_session=False)
    )
    return bool(deleted.rowcount)  # type: ignore[attr-defined]


def _length(failed_probes: int, hold: Hold) -> timedelta:
    seconds = backoff_delay(failed_probes + 1, base=FIRST_PAUSE, cap=MAX_PAUSE)
    return timedelta(seconds=max(seconds, hold.at_least))


def _insert_if_missing(session: Session, values: Mapping[str, object]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: two workers pausing at once must not fail on the primary key.

    RETURNING says whether the row was inserted: SQLAlchemy reports no rowcount (-1) for an INSERT on PostgreSQL.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(ChannelPause)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["channel"])
        .returning(ChannelPause.channel)
    )
    return inserted.first() is not None


class ChannelHealth:
    """This process's running view of each channel, shared by the send threads of a dispatcher.

    `held` lasts for one batch (the database's pause takes over from there); the failure streak lasts until a
    send on the channel works, across batches.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streak: dict[Channel, int] = {}
        self._held: dict[Channel, Hold] = {}
        self._worked: set[Channel] = set()

    def start_batch(self) -> None:
        with self._lock:
            self._held.clear()
            self._worked.clear()

    def holds(self, channel: Channel) -> bool:
        with self._lock:
            return channel in self._held

    def held(self) -> dict[Channel, Hold]:
        with self._lock:
            return dict(self._held)

    def worked(self) -> set[Channel]:
        """Channels that proved to work during this batch (a send went out or was refused for its recipient)."""
        with self._lock:
            return set(self._worked)

    def note(self, channel: Channel, error: SendError | None) -> None:
        """What one send's answer says about its channel."""
        with self._lock:
            if error is None or isinstance(error, PermanentSendError):
                self._streak[channel] = 0
                self._worked.add(channel)
                return
            if isinstance(error, ChannelSetupError):
                self._held[channel] = Hold(error.code, f"{error}; {error.fix}")
                return
            if not isinstance(error, TemporarySendError | UncertainSendError):
                return
            streak = self._streak.get(channel, 0) + 1
            self._streak[channel] = streak
            retry_after = error.retry_after if isinstance(error, TemporarySendError) else None
            if retry_after and retry_after > SHORT_RETRY_AFTER:
                self._held[channel] = Hold(
                    error.code, f"the provider asked to wait {retry_after:.0f} s: {error}", retry_after
                )
            elif streak >= OUTAGE_STREAK:
                self._held[channel] = Hold(
                    error.code, f"the provider seems down: {streak} failures in a row, the last: {error}"
                )


class PauseGate:
    """One batch's way past the stored pauses, at prepare time: held until `until`, or the one probe."""

    def __init__(self, pauses: list[PauseView], now: datetime, probe_wait: timedelta) -> None:
        self.pauses = {pause.channel: pause for pause in pauses}
        self.now = now
        self.probe_wait = probe_wait
        self._probing: set[Channel] = set()

    def wait_until(self, channel: Channel, *, session: Session) -> datetime | None:
        """When a send on `channel` may be tried again, or None when it may go now."""
        pause = self.pauses.get(channel)
        if pause is None:
            return None
        if pause.until > self.now:
            return pause.until
        if channel in self._probing:
            return self.now  # this batch's probe answers before the next batch decides
        if take_probe(pause, self.now, self.probe_wait, session=session):
            self._probing.add(channel)
            return None
        return self.now + self.probe_wait  # another worker probes
