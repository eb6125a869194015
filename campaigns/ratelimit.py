"""Pacing sends to what a provider accepts: a token bucket, retry back-off and Retry-After parsing.

Time is injected (`monotonic`, `sleep`, `now`) so tests run on fake clocks and never sleep for real.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Float rounding can leave 0.9999999 tokens after sleeping exactly as long as one token takes; without this
# tolerance the caller would go round again for a sleep of a few nanoseconds.
_EPSILON = 1e-9
# Retries sooner than every 30 seconds would hammer a provider that is down; one hour is as long as a survey
# invitation should wait before a human notices.
DEFAULT_BACKOFF_BASE = 30.0
DEFAULT_BACKOFF_CAP = 3600.0
# A jitter of 1 shortens the delay by a quarter: enough to spread a burst of failures over time while keeping
# the delay within [0.75, 1] of the exponential value, and the cap a true maximum.
JITTER_SPREAD = 0.25
# 2.0 ** 1024 overflows; no cap is anywhere near 2 ** 1000 times its base.
_MAX_DOUBLINGS = 1000


class TokenBucket:
    """At most `burst` sends at once and `rate` per second on average, shared by any number of threads.

    The bucket starts full. A waiting caller computes how long until a token is due, sleeps that long without
    holding the lock, then tries again; it never spins. `pause_for` (a 429 with Retry-After) holds everyone back;
    tokens keep accruing during a pause, up to `burst`, so what follows it is at most one burst.
    """

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of tokens per second, got {rate!r}")
        if burst is None:
            burst = max(1, int(rate))
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._updated = monotonic()
        self._paused_until = -math.inf

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        started = self._monotonic()
        while True:
            with self._lock:
                wait = self._take_or_wait(self._monotonic())
            if wait <= 0:
                return self._monotonic() - started
            self._sleep(wait)

    def try_acquire(self) -> bool:
        """Take one token if one is available now; never waits."""
        with self._lock:
            return self._take_or_wait(self._monotonic()) <= 0

    def pause_for(self, seconds: float) -> None:
        """Let nobody through for `seconds` from now (a longer pause already running is kept)."""
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"pause must be a non-negative number of seconds, got {seconds!r}")
        with self._lock:
            self._paused_until = max(self._paused_until, self._monotonic() + seconds)

    def _take_or_wait(self, now: float) -> float:
        """Take a token and return 0, or return how long to wait before trying again. Caller holds the lock."""
        self._refill(now)
        if now < self._paused_until:
            return self._paused_until - now
        if self._tokens >= 1 - _EPSILON:
            self._tokens = max(0.0, self._tokens - 1)
            return 0.0
        return (1 - self._tokens) / self.rate

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now


def backoff_delay(
    attempt: int,
    *,
    base: float = DEFAULT_BACKOFF_BASE,
    cap: float = DEFAULT_BACKOFF_CAP,
    jitter: float = 0.0,
) -> float:
    """Seconds to wait before retry number `attempt` (1 = the first retry).

    `base * 2 ** (attempt - 1)`, at most `cap`, then shortened by up to a quarter: `jitter` is a number in
    [0, 1] the caller draws (`random.random()`), which keeps this function pure and its tests exact.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt counts retries from 1, got {attempt!r}")
    if not (0 < base <= cap and math.isfinite(cap)):
        raise ValueError(f"need 0 < base <= cap, both finite; got base={base!r}, cap={cap!r}")
    if not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be in [0, 1], got {jitter!r}")
    exponential = min(cap, base * 2.0 ** min(attempt - 1, _MAX_DOUBLINGS))
    return exponential * (1 - JITTER_SPREAD * jitter)


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks us to wait, or None when it is absent or unreadable.

    Both forms of RFC 9110 are read: delta-seconds ("120") and an HTTP-date; a date in the past means 0.
    Fractional seconds are accepted too, because some providers send them.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r} given; use an aware UTC datetime")
    text = (header or "").strip()
    if not text:
        return None
    seconds = _delta_seconds(text)
    if seconds is not None:
        return seconds
    when = _http_date(text)
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _delta_seconds(text: str) -> float | None:
    if not text[0].isdigit():  # rejects "-5", "+5", "nan", "inf" and dates alike
        return None
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


def _http_date(text: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    # HTTP dates are always GMT; the asctime form carries no zone, and "-0000" parses as naive.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when
