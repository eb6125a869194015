from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from campaigns.clock import Clock, ManualClock, SystemClock

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_system_clock_tells_aware_utc_time() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(START), Clock)


def test_manual_clock_stands_still_until_told() -> None:
    clock = ManualClock(START)
    assert clock.now() == START
    assert clock.now() == START


def test_advance_takes_a_timedelta_or_keywords() -> None:
    clock = ManualClock(START)
    assert clock.advance(timedelta(hours=2)) == START + timedelta(hours=2)
    assert clock.advance(days=1, minutes=30) == START + timedelta(days=1, hours=2, minutes=30)
    assert clock.now() == START + timedelta(days=1, hours=2, minutes=30)


def test_advance_needs_exactly_one_kind_of_step() -> None:
    clock = ManualClock(START)
    with pytest.raises(TypeError):
        clock.advance()
    with pytest.raises(TypeError):
        clock.advance(timedelta(seconds=1), seconds=1)
    assert clock.now() == START


def test_advance_refuses_to_go_back_but_set_may() -> None:
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(seconds=-1)
    assert clock.now() == START
    clock.set(START - timedelta(days=3))
    assert clock.now() == START - timedelta(days=3)


def test_manual_clock_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        ManualClock(datetime(2026, 3, 2, 9, 0))
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="naive"):
        clock.set(datetime(2026, 3, 2, 9, 0))
    assert clock.now() == START


def test_manual_clock_converts_other_zones_to_utc() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == START
    assert clock.now().tzinfo is UTC


def test_concurrent_advances_are_not_lost() -> None:
    clock = ManualClock(START)

    def tick() -> None:
        for _ in range(1000):
            clock.advance(microseconds=1)

    threads = [threading.Thread(target=tick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == START + timedelta(microseconds=8000)


def test_the_monotonic_clock_moves_with_time_not_with_the_wall_clock_set_back() -> None:
    clock = ManualClock(START)
    clock.advance(seconds=30)
    clock.set(START - timedelta(hours=1))  # an NTP correction: the wall clock steps back
    clock.advance(seconds=45)
    assert clock.monotonic() == 75.0
    system = SystemClock()
    assert system.monotonic() <= system.monotonic()
