"""The per-channel pacer the poster waits on before each post: a burst, then the steady rate, per channel."""

from __future__ import annotations

from bot.pacing import ChannelPacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_a_burst_goes_at_once_then_one_post_a_second_per_channel() -> None:
    clock = FakeTime()
    pacer = ChannelPacer(60, burst=3, monotonic=clock.monotonic, sleep=clock.sleep)
    waits = [pacer.wait("C1") for _ in range(6)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert pacer.wait("C2") == 0.0  # another channel has its own allowance
    assert clock.now == 3.0


def test_a_quiet_channel_earns_its_burst_back() -> None:
    clock = FakeTime()
    pacer = ChannelPacer(60, burst=2, monotonic=clock.monotonic, sleep=clock.sleep)
    for _ in range(3):
        pacer.wait("C1")
    clock.now += 10
    assert [pacer.wait("C1") for _ in range(3)] == [0.0, 0.0, 1.0]


def test_zero_turns_pacing_off() -> None:
    clock = FakeTime()
    pacer = ChannelPacer(0, monotonic=clock.monotonic, sleep=clock.sleep)
    assert sum(pacer.wait("C1") for _ in range(100)) == 0
    assert clock.slept == []
