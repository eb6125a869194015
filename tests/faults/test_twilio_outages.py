"""Twilio failing for a stretch, then recovering: nothing texted twice, every invitation ends sent or clearly listed.

The stretch, in the order the sends meet it: HTTP 500 (Twilio's 20500), 429, a 500 from an edge for a message
Twilio had accepted, answers later than the client's 15 s read timeout (accepted too: the fake stores a send
before it delays the answer), and 401 (20003, a rotated auth token). Then Twilio works again. One number
refuses SMS for good (21610), so the run has one invitation that must end listed with its reason.

The dispatcher runs in this process on the manual clock (the `engine` and `dispatcher` fixtures), which moves
ten minutes between runs, so retries with backoff come due without waiting. None of these faults is about the
recipient, so after the recovery every other invitation must end sent: one left failed for good was burned by
an outage (issue 10, cases 2, 8, 9). `review` is allowed only where the log check could not decide.
"""

from __future__ import annotations

import threading

import pytest

from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from tests.faults.harness import LISTED_STATES, figure, outcome, pending, phone, size
from tests.fixtures.engine import add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import FakeTwilio

pytestmark = pytest.mark.faults

INVITATIONS = size("TWILIO_INVITATIONS", 1000, 200)
STRETCH = size("TWILIO_STRETCH", 40, 10)
TIMEOUTS = size("TWILIO_TIMEOUTS", 8, 4)
MAX_RUNS = 600  # ten minutes apart: over four days of the manual clock, well inside the 14-day expiry
READ_TIMEOUT_PLUS = 16.0
CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""


def slow_answers_for(fake: FakeTwilio, sends: int) -> threading.Thread:
    """The next `sends` sends are answered after the read timeout; then answers are prompt again."""
    start = fake.count()
    fake.set_latency(READ_TIMEOUT_PLUS)

    def restore() -> None:
        try:
            fake.wait_for(start + sends, timeout=120)
        finally:
            fake.set_latency(0)

    watcher = threading.Thread(target=restore, daemon=True)
    watcher.start()
    return watcher


def test_twilio_500_429_timeouts_and_401_then_recovery_text_nobody_twice_and_drop_nothing(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [{"external_id": f"c{i}", "phone": phone(i)} for i in range(INVITATIONS)])
    apply_yaml(engine, CAMPAIGN)
    assert plan(engine).planned == INVITATIONS
    refuses = phone(INVITATIONS - 1)
    fake_twilio.fail_to(refuses, 21610)
    fake_twilio.fail_next(20500, STRETCH)
    fake_twilio.fail_next(20429, STRETCH)
    fake_twilio.accept_then_fail_next(500, STRETCH)
    watcher = None
    runs = 0
    for runs in range(1, MAX_RUNS + 1):  # noqa: B007 (the count is reported)
        if watcher is None and fake_twilio.count() >= 3 * STRETCH:
            watcher = slow_answers_for(fake_twilio, TIMEOUTS)
            fake_twilio.fail_next(20003, STRETCH)  # after the slow ones: the token "rotated", then fixed
        dispatcher.drain()
        if pending(engine.db) == 0 and watcher is not None:
            break
        engine.clock.advance(minutes=10)  # type: ignore[attr-defined]
    if watcher is not None:
        watcher.join(timeout=60)

    result = outcome(engine.db, fake_twilio)
    burned = sum(result.states[s] for s in LISTED_STATES - {"review"}) - 1  # all but the refusing number
    figure(
        f"twilio 500 x{STRETCH}, 429 x{STRETCH}, accepted-then-500 x{STRETCH}, timeout x{TIMEOUTS}, "
        f"401 x{STRETCH} ({engine.db.engine.dialect.name}): {result.summary()}, {burned} failed for good by "
        f"the outage ({result.failed_though_texted} of them texted all the same), {runs} runs, states {dict(result.states)}"
    )
    assert result.texted_twice == 0, result.examples
    assert result.lost == 0, (result.states, result.examples)
    assert result.failed_though_texted == 0, result.examples
    assert burned == 0, result.states
