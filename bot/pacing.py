"""Pacing posts to Slack's per-channel limit: about one chat.postMessage a second per channel, short bursts
tolerated, HTTP 429 with Retry-After beyond it. The poster waits its turn here before each post, so that a
backlog goes out at the rate Slack takes it instead of as a storm of refusals; a 429 that comes anyway (another
app posting in the channel) is honoured by the outbox (`bot.slack_answers`).

A token bucket per channel, on real time: Slack counts wall seconds, whatever the business clock says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

BURST = 3  # posts a channel may take at once before the steady rate applies


@dataclass
class _Allowance:
    tokens: float
    at: float


class ChannelPacer:
    """`per_minute` posts a minute per channel after a burst of `burst`; 0 turns pacing off."""

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int = BURST,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_minute / 60
        self.burst = burst
        self.monotonic = monotonic
        self.sleep = sleep
        self._allowances: dict[str, _Allowance] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> float:
        """Block until a post to `channel` is within the limit, and count it; the seconds waited."""
        if self.per_second <= 0:
            return 0.0
        with self._lock:
            delay = self._take(channel)
        if delay > 0:
            self.sleep(delay)
        return delay

    def _take(self, channel: str) -> float:
        """Take the next post's place; how long until it is due (the place is kept while waiting)."""
        now = self.monotonic()
        allowance = self._allowances.setdefault(channel, _Allowance(float(self.burst), now))
        allowance.tokens = min(float(self.burst), allowance.tokens + (now - allowance.at) * self.per_second)
        allowance.at = now
        allowance.tokens -= 1
        return 0.0 if allowance.tokens >= 0 else -allowance.tokens / self.per_second
