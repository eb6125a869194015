"""How `nps serve` shares one interpreter between its threads.

Its threads mostly wait on I/O (a webhook's database round trips, the scheduler's sends) while one or two are
busy in Python (a reply being parsed, a batch being prepared, a planning pass). CPython lets a busy thread keep
the GIL for up to 5 ms before it hands over (`sys.getswitchinterval()`), so a thread coming back from each of
its round trips can wait that long behind a busy one: a reply of ten statements up to 50 ms, and under a
steady load the waits queue up. Handing over every millisecond instead lowered the server's CPU per reply and
its p99 at 200 replies a second (benchmarks/inbound.py; the figures are in benchmarks/results/LATEST.md).
`nps worker` gained nothing from it (benchmarks/workers.py), so it keeps the default.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_SECONDS = 0.001


def share_the_interpreter() -> None:
    """Hand the GIL between threads every millisecond instead of every five."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
