"""A burst of detractors against Slack's per-channel rate limit: what the alert channel gets, and how fast.

1,000 detractors answer within a minute (scores 0 to 6 in turn, each with its comment, so each alert is due as it
is queued), written by a thread as replies write them. The alert poster is the production one (`bot.poster`,
summaries on at SLACK_ALERTS_PER_MINUTE=10, paced at SLACK_POSTS_PER_MINUTE=50), run every scheduler tick (15 s,
or at once when a run took longer) on the system clock, against the fake Slack enforcing about one post a second
per channel (a burst of 3, 429 + Retry-After beyond it). The baseline is what one message per alert would take
at that rate: 1,000 messages, about 1,000 seconds.

Figures: every case shown exactly once (in its own message or one summary line) and the messages used; the time
from the first answer until every case was shown, and alerts shown per minute; the longest an urgent case (score
0-3) waited from its answer to being shown; the 429s Slack answered. SQLite in a temporary directory.
`--quick`: 200 detractors in 12 s. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_sdk import WebClient  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bot import ids  # noqa: E402
from bot.pacing import ChannelPacer  # noqa: E402
from bot.poster import AlertPoster, Channels  # noqa: E402
from campaigns.clock import SystemClock  # noqa: E402
from campaigns.followups.alert_queue import needs_posting  # noqa: E402
from campaigns.followups.opening import on_score  # noqa: E402
from campaigns.scores.nps import categorize  # noqa: E402
from storage.db import Database, upgrade  # noqa: E402
from storage.enums import AlertKind, AlertState, Channel  # noqa: E402
from storage.tables import Contact, Response, SlackAlert  # noqa: E402
from tests.standins.fake_slack import FakeSlack  # noqa: E402

CHANNEL = "C0ALERTS"
POST = "chat.postMessage"
TICK = 15.0  # NPS_TICK_SECONDS: how often the scheduler runs the poster
ALERTS_PER_MINUTE, POSTS_PER_MINUTE = 10, 50
SLACK_RATE, SLACK_BURST = 1.0, 3
URGENT = 3  # scores 0-3: the urgent ones
RERUN = ".venv/bin/python benchmarks/slack_bursts.py"


def answer(db: Database, clock: SystemClock, n: int) -> None:
    """One detractor's score and comment, queued as a reply queues them: the alert is due at once."""
    now = clock.now()
    with db.transaction() as session:
        contact = Contact(external_id=f"c{n}", name=f"Customer {n}")
        session.add(contact)
        session.flush()
        score = n % 7
        response = Response(
            contact_id=contact.id,
            channel=Channel.SMS,
            score=score,
            category=categorize(score).value,
            comment=f"complaint number {n}",
            contact_snapshot={},
            answered_at=now,
        )
        session.add(response)
        session.flush()
        on_score(response, now=now, session=session, new=True)
        session.flush()
        alert = session.scalars(select(SlackAlert).where(SlackAlert.response_id == response.id)).one()
        needs_posting(alert, now, session)  # the comment came: no wait for it


def burst(db: Database, clock: SystemClock, count: int, seconds: float) -> threading.Thread:
    def write() -> None:
        start = time.monotonic()
        for n in range(count):
            delay = start + seconds * n / count - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            answer(db, clock, n)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def shown(post: dict[str, Any]) -> list[int]:
    opens = [
        int(block["accessory"]["value"])
        for block in post.get("blocks") or []
        if str(block.get("accessory", {}).get("action_id", "")).startswith(ids.OPEN_CASE)
    ]
    return opens or [int(post["metadata"]["event_payload"]["alert_id"])]


def settled(db: Database) -> bool:
    waiting = (AlertState.PENDING, AlertState.POSTING, AlertState.UNCERTAIN)
    with db.transaction() as session:
        return session.scalar(select(SlackAlert.id).where(SlackAlert.state.in_(waiting)).limit(1)) is None


def cases(db: Database) -> dict[int, tuple[int, datetime]]:
    """Each detractor alert's score and answer time."""
    with db.transaction() as session:
        rows = session.execute(
            select(SlackAlert.id, Response.score, Response.answered_at)
            .join(Response, Response.id == SlackAlert.response_id)
            .where(SlackAlert.kind == AlertKind.DETRACTOR)
        ).all()
    return {alert_id: (score, answered_at) for alert_id, score, answered_at in rows}


def measure(count: int, seconds: float) -> dict[str, Any]:
    clock = SystemClock()
    with tempfile.TemporaryDirectory() as directory, FakeSlack() as fake:
        url = f"sqlite:///{directory}/bursts.db"
        db = Database.connect(url)
        upgrade(db.engine)
        fake.rate_limit(per_second=SLACK_RATE, burst=SLACK_BURST)
        client = WebClient(token="xoxb-bench", base_url=fake.url, timeout=10, retry_handlers=[])
        poster = AlertPoster(
            db,
            client,
            clock=clock,
            channels=Channels(alerts=CHANNEL, kudos=None),
            alerts_per_minute=ALERTS_PER_MINUTE,
            pacer=ChannelPacer(POSTS_PER_MINUTE),
        )
        start = time.time()
        writer = burst(db, clock, count, seconds)
        runs = 0
        while writer.is_alive() or not settled(db):
            began = time.monotonic()
            poster.run()
            runs += 1
            time.sleep(max(0.0, TICK - (time.monotonic() - began)))
        posts = [request for request in fake.requests(POST) if request.succeeded]
        by_case = cases(db)
        limited = fake.rate_limited()
        db.dispose()
    shown_at: dict[int, float] = {}
    times_shown: Counter[int] = Counter()
    for request in posts:
        for alert_id in shown(request.body):
            times_shown[alert_id] += 1
            shown_at.setdefault(alert_id, request.time)
    last = max(shown_at.values()) - start if shown_at else float("inf")
    urgent_waits = [
        shown_at[a] - answered.timestamp() for a, (score, answered) in by_case.items() if score <= URGENT
    ]
    return {
        "count": count,
        "seconds": seconds,
        "messages": len(posts),
        "exactly_once": times_shown == Counter(by_case.keys()) and len(by_case) == count,
        "lost": len(set(by_case) - set(times_shown)),
        "twice": sum(1 for n in times_shown.values() if n > 1),
        "last": last,
        "per_minute": count / last * 60 if last else 0.0,
        "urgent_wait": max(urgent_waits) if urgent_waits else 0.0,
        "limited": limited,
        "runs": runs,
    }


def bench(figure: str, baseline: float | None, ours: float, unit: str, target: str, passed: bool) -> None:
    ratio = ours / baseline if baseline else None
    line = {
        "figure": figure,
        "baseline": baseline,
        "ours": round(ours, 1),
        "unit": unit,
        "ratio": ratio,
        "target": target,
        "pass": passed,
        "rerun": RERUN,
    }
    print("BENCH " + json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 detractors in 12 s")
    args = parser.parse_args()
    count, seconds = (200, 12.0) if args.quick else (1000, 60.0)
    result = measure(count, seconds)
    print(
        f"{count} detractors in {seconds:.0f} s: {result['messages']} messages ({result['runs']} poster runs), "
        f"every case shown once: {result['exactly_once']} (lost {result['lost']}, twice {result['twice']}), "
        f"last case shown after {result['last']:.1f} s, urgent cases waited at most {result['urgent_wait']:.1f} s, "
        f"{result['limited']} answered 429",
        flush=True,
    )
    name = f"Slack burst, {count:,} detractors in {seconds:.0f} s, Slack at 1 post/s per channel"
    one_by_one = count / SLACK_RATE
    bench(
        f"{name}: messages used, every case shown exactly once (baseline: one per alert)",
        float(count),
        float(result["messages"]),
        "messages",
        "each case exactly once, none lost",
        bool(result["exactly_once"]),
    )
    bench(
        f"{name}: time until every case was shown (baseline: one message a second per alert)",
        one_by_one,
        result["last"],
        "s",
        f"< {seconds + 60:.0f} s (the burst plus a minute)",
        result["last"] < seconds + 60,
    )
    bench(
        f"{name}: alerts shown per minute",
        SLACK_RATE * 60,
        result["per_minute"],
        "alerts/min",
        "keeps up with the burst",
        result["per_minute"] >= count / (seconds + 60) * 60,
    )
    bench(
        f"{name}: longest wait of an urgent case (score 0-3), answer to shown",
        None,
        result["urgent_wait"],
        "s",
        "< 60 s",
        result["urgent_wait"] < 60,
    )
    bench(
        f"{name}: 429s Slack answered",
        None,
        float(result["limited"]),
        "429s",
        "0 (paced)",
        result["limited"] == 0,
    )


if __name__ == "__main__":
    main()
