"""Slack failing for a stretch, then recovering: every detractor alert is posted once, and in order.

The stretch, in the order the alert queue meets it: HTTP 500, 429 with Retry-After, an answer later than the
client's 10 s timeout (the fake posts the message before it delays the answer, as a slow Slack does), and
`not_in_channel` (the bot was removed from the channel, then invited back). The poster runs in this process on
the manual clock, a minute between runs, so every pause and backoff comes due without waiting.
Counted by the fake Slack: successful chat.postMessage calls per alert (each alert's customer is in its text).
"""

from __future__ import annotations

import re
import threading
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from bot.poster import AlertPoster
from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from tests.faults.harness import figure, size
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed

pytestmark = pytest.mark.faults

ALERTS = size("SLACK_ALERTS", 200, 40)
STRETCH = size("SLACK_STRETCH", 5, 3)
POST = "chat.postMessage"
CLIENT_TIMEOUT_PLUS = 11.0
MAX_RUNS = 24 * 60  # a day of the manual clock
CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


def number(n: int) -> str:
    return f"+4915112{n:06d}"


def surveyed(engine: Container, dispatcher: Dispatcher) -> None:
    rows = [{"external_id": f"c{n}", "name": f"Customer {n}", "phone": number(n)} for n in range(ALERTS)]
    add_contacts(engine, rows)
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    assert dispatcher.drain().sent == ALERTS


def detractors(app: TestClient, customers: range) -> None:
    """Each customer answers 3 and a comment: one alert each, queued in this order."""
    for n in customers:
        for body in ("3", f"complaint number {n}"):
            params = inbound_sms_params(number(n), FROM_NUMBER, body)
            assert post_signed(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN).status_code == 200


def one_slow_answer(fake: FakeSlack) -> threading.Thread:
    start = fake.count(POST)
    fake.set_latency(POST, CLIENT_TIMEOUT_PLUS)

    def restore() -> None:
        try:
            fake.wait_for(POST, start + 1, timeout=120)
        finally:
            fake.set_latency(POST, 0)

    watcher = threading.Thread(target=restore, daemon=True)
    watcher.start()
    return watcher


def posted_customers(fake: FakeSlack) -> list[int]:
    """The customer of each successful chat.postMessage, in the order Slack took them."""
    found = []
    for call in fake.successful(POST):
        match = re.search(r"from Customer (\d+)", str(call.get("text", "")) + str(call.get("blocks", "")))
        if match:
            found.append(int(match[1]))
    return found


def test_slack_500_429_timeout_and_not_in_channel_then_recovery_post_every_alert_once_in_order(
    engine: Container,
    dispatcher: Dispatcher,
    fake_slack: FakeSlack,
    app: TestClient,
    poster: AlertPoster,
) -> None:
    surveyed(engine, dispatcher)
    before = ALERTS // 4
    detractors(app, range(before))
    assert poster.run() == before  # Slack works: these go out, and the outage starts mid-queue
    fake_slack.reset()
    detractors(app, range(before, ALERTS))
    fake_slack.fail_next(POST, status=500, times=STRETCH)
    fake_slack.fail_next(POST, status=429, times=STRETCH, retry_after=30)
    phases = iter(["timeout", "channel"])
    watcher: threading.Thread | None = None
    runs = 0
    for runs in range(1, MAX_RUNS + 1):  # noqa: B007 (the count is reported)
        attempts = fake_slack.count(POST)
        phase = None
        if attempts >= 2 * STRETCH and watcher is None:
            phase = next(phases)
        elif watcher is not None and not watcher.is_alive() and attempts >= 2 * STRETCH + 1:
            phase = next(phases, None)
        if phase == "timeout":
            watcher = one_slow_answer(fake_slack)
        elif phase == "channel":
            fake_slack.fail_next(
                POST, status=200, times=STRETCH, body={"ok": False, "error": "not_in_channel"}
            )
        poster.run()
        if _all_settled(engine) and watcher is not None and not watcher.is_alive():
            break
        engine.clock.advance(minutes=1)  # type: ignore[attr-defined]

    posts = Counter(posted_customers(fake_slack))
    twice = sum(1 for n in posts.values() if n > 1)
    missing = sorted(set(range(before, ALERTS)) - set(posts))
    order = list(dict.fromkeys(posted_customers(fake_slack)))
    in_order = order == sorted(order)
    figure(
        f"slack 500 x{STRETCH}, 429 x{STRETCH}, timeout x1, not_in_channel x{STRETCH} "
        f"({engine.db.engine.dialect.name}): {ALERTS} alerts ({before} before the outage), "
        f"{len(posts)} posted after it, {twice} posted twice, {len(missing)} never posted, "
        f"in order: {'yes' if in_order else 'no'}, {runs} runs"
    )
    assert twice == 0, [n for n, c in posts.items() if c > 1]
    assert missing == [], missing
    assert in_order, order


def _all_settled(engine: Container) -> bool:
    with engine.db.engine.connect() as connection:
        left = connection.execute(
            text("SELECT count(*) FROM slack_alerts WHERE state IN ('pending', 'posting')")
        ).scalar_one()
    return int(left) == 0
