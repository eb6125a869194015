"""Where "now" comes from: the system clock in production, a hand-driven clock in tests.

Everything that schedules or expires work takes a `Clock` instead of calling `datetime.now`, so tests can move
time forward by days in microseconds and never sleep.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never steps back (an NTP correction, a resumed VM): for how long something
        has been kept, never for when."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to; safe to share between threads.

    `advance` refuses to go backwards because a negative step in a test is almost always a sign error;
    `set` may go anywhere, for tests that deliberately model a clock that jumps back; `monotonic` moves only with
    `advance`, as real time goes on whatever the wall clock is set to.
    """

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self._now = _as_utc(start)
        self._elapsed = 0.0

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by `delta` or by `timedelta(**kwargs)` (e.g. `days=1`); returns the new time."""
        if (delta is None) == (not kwargs):
            raise TypeError(
                "advance takes either a timedelta or timedelta keyword arguments, not both or neither"
            )
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError(f"advance moves forward only, got {step}; use set() to go back")
        with self._lock:
            self._now += step
            self._elapsed += step.total_seconds()
            return self._now

    def set(self, at: datetime) -> None:
        with self._lock:
            self._now = _as_utc(at)

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"


def _as_utc(at: datetime) -> datetime:
    # A naive datetime has no defined instant; guessing its zone is how off-by-hours bugs start.
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r} given; use an aware datetime")
    return at.astimezone(UTC)
