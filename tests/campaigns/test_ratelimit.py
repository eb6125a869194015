from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.ratelimit import TokenBucket, backoff_delay, retry_after_seconds


class FakeTime:
    """A monotonic clock that only moves when someone sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def bucket(fake: FakeTime, rate: float, burst: int | None = None) -> TokenBucket:
    return TokenBucket(rate, burst, monotonic=fake.monotonic, sleep=fake.sleep)


def from_another_thread(action: Callable[[], object]) -> None:
    """Run `action` as another worker would; fails (rather than hangs) if it blocks on the bucket's lock."""
    other = threading.Thread(target=action, daemon=True)
    other.start()
    other.join(timeout=5)
    assert not other.is_alive(), "blocked: a sleeping caller holds the bucket's lock"


# --- construction ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_a_rate_that_is_not_a_positive_number_is_refused(fake: FakeTime, rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        bucket(fake, rate)


def test_a_burst_below_one_is_refused(fake: FakeTime) -> None:
    with pytest.raises(ValueError, match="burst"):
        bucket(fake, 5, burst=0)


@pytest.mark.parametrize(("rate", "burst"), [(0.5, 1), (1, 1), (2.7, 2), (200, 200)])
def test_burst_defaults_to_one_second_of_rate(fake: FakeTime, rate: float, burst: int) -> None:
    assert bucket(fake, rate).burst == burst


# --- pacing ----------------------------------------------------------------------------------------------------


def test_a_full_bucket_gives_its_burst_at_once_then_refuses(fake: FakeTime) -> None:
    limiter = bucket(fake, 1, burst=3)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert not limiter.try_acquire()
    assert fake.sleeps == []


def test_steady_rate_sleeps_once_per_token(fake: FakeTime) -> None:
    limiter = bucket(fake, 5, burst=1)
    waits = [limiter.acquire() for _ in range(11)]
    assert waits[0] == 0
    assert waits[1:] == pytest.approx([0.2] * 10)
    assert fake.sleeps == pytest.approx([0.2] * 10)  # no spinning: one sleep per token
    assert fake.now - 1000 == pytest.approx(2.0)


def test_tokens_refill_with_time_up_to_the_burst(fake: FakeTime) -> None:
    limiter = bucket(fake, 10, burst=4)
    for _ in range(4):
        assert limiter.try_acquire()
    assert not limiter.try_acquire()
    fake.now += 0.1
    assert limiter.try_acquire()
    fake.now += 3600
    assert sum(limiter.try_acquire() for _ in range(10)) == 4


def test_pause_for_holds_everyone_back(fake: FakeTime) -> None:
    limiter = bucket(fake, 1, burst=3)
    limiter.pause_for(30)
    assert not limiter.try_acquire()
    assert limiter.acquire() == pytest.approx(30)
    # Tokens accrued during the pause, but never more than one burst.
    assert [limiter.acquire() for _ in range(3)] == pytest.approx([0, 0, 1])


def test_a_shorter_pause_does_not_cut_a_longer_one(fake: FakeTime) -> None:
    limiter = bucket(fake, 100)
    limiter.pause_for(60)
    limiter.pause_for(5)
    limiter.pause_for(0)
    assert limiter.acquire() == pytest.approx(60)


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf")])
def test_a_pause_must_be_a_finite_non_negative_time(fake: FakeTime, seconds: float) -> None:
    with pytest.raises(ValueError):
        bucket(fake, 1).pause_for(seconds)


def test_a_pause_arriving_while_a_caller_sleeps_extends_its_wait(fake: FakeTime) -> None:
    limiter = bucket(fake, 1, burst=1)
    limiter.acquire()

    def pause_once(_: float) -> None:
        fake.on_sleep = None
        from_another_thread(lambda: limiter.pause_for(5))  # a 429 seen by another worker

    fake.on_sleep = pause_once
    assert limiter.acquire() == pytest.approx(5)
    assert fake.sleeps == pytest.approx([1, 4])


def test_the_lock_is_free_while_a_caller_sleeps(fake: FakeTime) -> None:
    limiter = bucket(fake, 1, burst=1)
    limiter.acquire()
    answers: list[bool] = []

    def try_meanwhile(_: float) -> None:
        fake.on_sleep = None
        from_another_thread(lambda: answers.append(limiter.try_acquire()))

    fake.on_sleep = try_meanwhile
    limiter.acquire()
    assert answers == [False]


def test_threads_share_the_rate_on_the_real_clock() -> None:
    # A behaviour check with loose bounds: 100 tokens at 200/s from a burst of 1 take 99/200 s = 0.5 s.
    sleeps: list[float] = []

    def counting_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    limiter = TokenBucket(200, burst=1, sleep=counting_sleep)
    threads = [threading.Thread(target=lambda: [limiter.acquire() for _ in range(25)]) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 3.0
    assert all(seconds > 0 for seconds in sleeps)
    assert len(sleeps) < 100 * 4 * 3  # each token wakes each waiter a few times at most: no spinning


# --- backoff_delay ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "delay"), [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (50, 3600), (10**6, 3600)]
)
def test_backoff_doubles_from_the_base_up_to_the_cap(attempt: int, delay: float) -> None:
    assert backoff_delay(attempt) == delay


def test_jitter_shortens_the_delay_by_up_to_a_quarter() -> None:
    assert backoff_delay(2, jitter=1.0) == 45
    assert backoff_delay(2, jitter=0.5) == 52.5
    assert backoff_delay(99, base=1, cap=10, jitter=1.0) == 7.5


@given(st.integers(1, 2000), st.floats(0, 1))
def test_backoff_never_exceeds_the_cap_nor_shrinks_with_attempts(attempt: int, jitter: float) -> None:
    delay = backoff_delay(attempt, jitter=jitter)
    assert 0.75 * 30 <= delay <= 3600
    assert backoff_delay(attempt + 1) >= backoff_delay(attempt)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempt": 0},
        {"attempt": True},
        {"attempt": 1, "jitter": 1.5},
        {"attempt": 1, "jitter": -0.1},
        {"attempt": 1, "base": 0},
        {"attempt": 1, "base": 100, "cap": 10},
        {"attempt": 1, "cap": float("inf")},
    ],
)
def test_backoff_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        backoff_delay(**kwargs)  # type: ignore[arg-type]


# --- retry_after_seconds ----------------------------------------------------------------------------------------

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Wed Oct 21 07:28:10 2015", 10.0),  # obsolete asctime form, implicitly GMT
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # already past
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, NOW) == seconds


@pytest.mark.parametrize("header", [None, "", "  ", "soon", "-5", "+5", "nan", "inf", "12 apples"])
def test_an_absent_or_unreadable_retry_after_is_none(header: str | None) -> None:
    assert retry_after_seconds(header, NOW) is None


def test_retry_after_compares_instants_not_wall_times() -> None:
    now = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now) == 30.0


def test_retry_after_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="naive"):
        retry_after_seconds("5", datetime(2015, 10, 21, 7, 28))
