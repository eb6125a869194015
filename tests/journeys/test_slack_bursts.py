"""A burst of detractors against a Slack that takes about one post a second per channel: the most urgent posted
on their own, the rest summarised, every case shown exactly once, through 429s and lost answers, and each case
still actionable from its summary.

The fake Slack enforces its per-channel limit on a small window (RATE posts a second, a burst of 3) and the
poster paces itself a little below it, so the test runs in about a second; `benchmarks/slack_bursts.py` runs the
same burst at Slack's real rate.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from bot import ids
from bot.bursts import SUMMARY_SIZE
from bot.poster import AlertPoster
from campaigns.followups.opening import COMMENT_WAIT, on_comment, on_score
from campaigns.scores.nps import categorize
from service.container import Container, build_container
from storage.db import Database
from storage.enums import AlertKind, AlertState, Channel
from storage.tables import Contact, FollowUp, Response, SlackAlert
from tests.fixtures.slack import ALERTS, MANAGER, post_to_slack_events
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import block_actions_body

POST = "chat.postMessage"
BURST = 1000
PER_MINUTE = 10  # SLACK_ALERTS_PER_MINUTE
RATE = 50  # posts a second the fake Slack takes per channel (Slack: about 1)
PACE = 40 * 60  # posts a minute the poster paces itself to, a little below the fake's limit


@pytest.fixture
def engine(slack_engine: Container, db: Database, clock: Any) -> Container:
    """The Slack engine with summaries and pacing on, as in production (at a faster rate)."""
    settings = dataclasses.replace(
        slack_engine.settings, slack_alerts_per_minute=PER_MINUTE, slack_posts_per_minute=PACE
    )
    return build_container(settings, db=db, clock=clock)


def burst(engine: Container, count: int = BURST) -> list[int]:
    """`count` detractors answer within a minute (scores 0 to 6 in turn), queued as a reply queues them; their
    alerts' ids. The clock then passes the comment wait, so every alert is due at once."""
    start = engine.clock.now()
    with engine.db.transaction() as session:
        for n in range(count):
            contact = Contact(external_id=f"c{n}", name=f"Customer {n}")
            session.add(contact)
            session.flush()
            score = n % 7
            at = start + timedelta(seconds=60 * n / count)
            response = Response(
                contact_id=contact.id,
                channel=Channel.SMS,
                score=score,
                category=categorize(score).value,
                comment=f"complaint number {n}",
                contact_snapshot={},
                answered_at=at,
            )
            session.add(response)
            session.flush()
            on_score(response, now=at, session=session, new=True)
    engine.clock.advance(COMMENT_WAIT + timedelta(minutes=1))  # type: ignore[attr-defined]
    with engine.db.transaction() as session:
        return list(session.scalars(select(SlackAlert.id).where(SlackAlert.kind == AlertKind.DETRACTOR)))


def scores(engine: Container) -> dict[int, int]:
    with engine.db.transaction() as session:
        rows = session.execute(
            select(SlackAlert.id, Response.score).join(Response, Response.id == SlackAlert.response_id)
        ).all()
    return {alert_id: score for alert_id, score in rows}


def shown(post: dict[str, Any]) -> list[int]:
    """The detractor alerts a post shows: its own (metadata), or one per summary line (the Open buttons)."""
    opens = [
        int(block["accessory"]["value"])
        for block in post.get("blocks") or []
        if str(block.get("accessory", {}).get("action_id", "")).startswith(ids.OPEN_CASE)
    ]
    return opens or [post["metadata"]["event_payload"]["alert_id"]]


def is_summary(post: dict[str, Any]) -> bool:
    return "more detractors at once" in json.dumps(post.get("blocks"))


def run_until_settled(engine: Container, poster: AlertPoster, runs: int = 60) -> int:
    """Poster runs a scheduler tick apart until nothing is left to post; the runs it took."""
    for n in range(1, runs + 1):
        poster.run()
        with engine.db.transaction() as session:
            waiting = session.scalars(
                select(SlackAlert.id).where(
                    SlackAlert.state.in_((AlertState.PENDING, AlertState.POSTING, AlertState.UNCERTAIN))
                )
            ).all()
        if not waiting:
            return n
        engine.clock.advance(seconds=15)  # type: ignore[attr-defined]
    raise AssertionError(f"alerts still waiting after {runs} runs: {waiting}")


def test_a_thousand_detractors_in_a_minute_are_each_shown_once_the_most_urgent_first(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    fake_slack.rate_limit(per_second=RATE, burst=3)
    alerts = burst(engine)
    run_until_settled(engine, poster)

    posts = fake_slack.successful(POST)
    assert Counter(a for post in posts for a in shown(post)) == Counter(alerts)  # none lost, none twice
    singles = [post for post in posts if not is_summary(post)]
    summaries = [post for post in posts if is_summary(post)]
    assert len(singles) == PER_MINUTE
    assert len(summaries) == math.ceil((BURST - PER_MINUTE) / SUMMARY_SIZE)
    assert posts == singles + summaries  # the urgent ones on their own first, then the summaries
    score = scores(engine)
    assert {score[a] for post in singles for a in shown(post)} == {0}  # ten of the 0s, the oldest
    in_summaries = [score[a] for post in summaries for a in shown(post)]
    assert in_summaries == sorted(in_summaries)  # most urgent first across the summaries too
    assert fake_slack.rate_limited() == 0  # paced: no 429 at all
    first = summaries[0]
    assert first["channel"] == ALERTS
    assert first["text"] == f"{SUMMARY_SIZE} more detractors at once: one line each, the most urgent first"
    assert "complaint number" not in first["text"]  # notifications carry no customer text
    head = first["blocks"][0]["text"]["text"]
    assert f"{SUMMARY_SIZE} more detractors at once* (1 of 25)" in head
    assert first["blocks"][1]["text"]["text"] == "*0/10* · *Customer 70* · - via sms\n>complaint number 70"
    assert fake_slack.invalid_payloads() == []
    with engine.db.transaction() as session:
        states = Counter(session.scalars(select(SlackAlert.state).where(SlackAlert.id.in_(alerts))))
    assert states == {AlertState.POSTED: PER_MINUTE, AlertState.SUMMARISED: BURST - PER_MINUTE}


def test_a_429_makes_the_burst_wait_its_retry_after_then_every_case_is_shown_once(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    alerts = burst(engine, 200)
    fake_slack.fail_next(POST, status=429, retry_after=30)
    assert poster.run() == 0  # refused: the whole queue waits the Retry-After
    engine.clock.advance(seconds=29)  # type: ignore[attr-defined]
    assert poster.run() == 0 and fake_slack.count(POST) == 1  # not asked again before it is over
    engine.clock.advance(seconds=2)  # type: ignore[attr-defined]
    run_until_settled(engine, poster)
    assert fake_slack.count(POST) == 1 + PER_MINUTE + math.ceil((200 - PER_MINUTE) / SUMMARY_SIZE)
    assert Counter(a for post in fake_slack.successful(POST) for a in shown(post)) == Counter(alerts)


def test_a_summary_whose_answer_was_lost_is_found_in_the_history_not_posted_again(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    alerts = burst(engine, 100)
    # The first summary (after the ten posted on their own) reaches Slack; its answer never comes back.
    fake_slack.drop_next(POST, after=PER_MINUTE)
    run_until_settled(engine, poster)
    assert fake_slack.count("conversations.history") >= 1  # looked for before anything was posted again
    posts = fake_slack.successful(POST)
    assert len(posts) == PER_MINUTE + math.ceil((100 - PER_MINUTE) / SUMMARY_SIZE)
    assert Counter(a for post in posts for a in shown(post)) == Counter(alerts)
    with engine.db.transaction() as session:
        summaries = session.execute(
            select(SlackAlert.state, SlackAlert.ts).where(SlackAlert.kind == AlertKind.SUMMARY)
        ).all()
    assert [state for state, _ in summaries] == [AlertState.POSTED] * 3 and all(ts for _, ts in summaries)


def test_open_on_a_summary_line_posts_the_case_on_its_own_where_it_can_be_acknowledged(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, app: TestClient
) -> None:
    burst(engine, 30)
    run_until_settled(engine, poster)
    [summary] = [post for post in fake_slack.successful(POST) if is_summary(post)]
    with engine.db.transaction() as session:
        summary_ts = session.scalars(select(SlackAlert.ts).where(SlackAlert.kind == AlertKind.SUMMARY)).one()
    line = summary["blocks"][1]["accessory"]
    click = block_actions_body(
        line["action_id"], value=line["value"], user_id=MANAGER, channel_id=ALERTS, message_ts=summary_ts
    )
    assert post_to_slack_events(app, click).status_code == 200
    own = fake_slack.wait_for(POST, PER_MINUTE + 2, successful=True)[-1]
    assert own["metadata"]["event_payload"]["alert_id"] == int(line["value"])
    action_ids = [e["action_id"] for b in own["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert action_ids == [ids.ACK, ids.ASSIGN, ids.RESOLVE]

    post_to_slack_events(app, click)  # a second click posts nothing more, and says so to the clicker
    [told] = fake_slack.wait_for("chat.postEphemeral", 1)
    assert told["text"] == "That case is already posted on its own in this channel."
    poster.run()
    assert fake_slack.count(POST) == PER_MINUTE + 2

    with engine.db.transaction() as session:
        alert = session.get(SlackAlert, int(line["value"]))
        assert alert is not None and alert.state is AlertState.POSTED
        follow_up = session.scalars(select(FollowUp).where(FollowUp.response_id == alert.response_id)).one()
        own_ts = alert.ts
    ack = block_actions_body(
        ids.ACK, value=str(follow_up.id), user_id=MANAGER, channel_id=ALERTS, message_ts=own_ts
    )
    assert post_to_slack_events(app, ack).status_code == 200
    fake_slack.wait_for("chat.update", 2, successful=True)
    edits = fake_slack.successful("chat.update")
    [edited] = [edit for edit in edits if edit["ts"] == own_ts]
    assert f"Acknowledged by <@{MANAGER}>" in json.dumps(edited["blocks"])
    [listing] = [edit for edit in edits if edit["ts"] == summary_ts]  # the opened case left its summary
    assert int(line["value"]) not in shown(listing)
    assert "1 case has left this summary" in json.dumps(listing["blocks"])


def test_a_click_on_open_from_another_message_queues_nothing(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, app: TestClient
) -> None:
    burst(engine, 30)
    run_until_settled(engine, poster)
    [summary] = [post for post in fake_slack.successful(POST) if is_summary(post)]
    line = summary["blocks"][1]["accessory"]
    click = block_actions_body(
        line["action_id"], value=line["value"], user_id=MANAGER, channel_id=ALERTS, message_ts="1.000001"
    )
    assert post_to_slack_events(app, click).status_code == 200
    fake_slack.wait_for("chat.postEphemeral", 1)
    poster.run()
    assert fake_slack.count(POST) == PER_MINUTE + 1


def test_a_case_that_changes_before_its_summary_goes_out_is_shown_once_on_its_own(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    alerts = burst(engine, 30)
    fake_slack.fail_next(POST, status=429, retry_after=30)
    poster.run()  # summarised, then refused: nothing is in Slack yet
    with engine.db.transaction() as session:
        summarised = session.scalars(
            select(SlackAlert).where(SlackAlert.state == AlertState.SUMMARISED).order_by(SlackAlert.id)
        ).first()
        assert summarised is not None
        response = session.get(Response, summarised.response_id)
        assert response is not None
        response.comment = "and now they are cancelling"
        on_comment(response, now=engine.clock.now(), session=session)
        changed = summarised.id
    engine.clock.advance(seconds=31)  # type: ignore[attr-defined]
    run_until_settled(engine, poster)
    posts = fake_slack.successful(POST)
    assert Counter(a for post in posts for a in shown(post)) == Counter(alerts)
    [own] = [post for post in posts if shown(post) == [changed]]
    assert "and now they are cancelling" in json.dumps(own["blocks"])


def test_a_poster_killed_while_posting_a_summary_leaves_it_found_not_posted_twice(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    alerts = burst(engine, 60)
    run_until_settled(engine, poster)
    posted = fake_slack.count(POST)
    with engine.db.transaction() as session:  # what kill -9 after Slack took the post leaves: a claim, no ts
        summary = session.scalars(select(SlackAlert).where(SlackAlert.kind == AlertKind.SUMMARY)).first()
        assert summary is not None
        in_slack, summary_id, now = summary.ts, summary.id, engine.clock.now()
        session.execute(
            update(SlackAlert)
            .where(SlackAlert.id == summary_id)
            .values(state=AlertState.POSTING, ts=None, posted_at=None, claimed_at=now, updated_at=now)
        )
    engine.clock.advance(minutes=6)  # type: ignore[attr-defined]
    run_until_settled(engine, poster)
    assert fake_slack.count(POST) == posted  # looked up in the history, not posted again
    assert Counter(a for post in fake_slack.successful(POST) for a in shown(post)) == Counter(alerts)
    with engine.db.transaction() as session:
        found = session.get(SlackAlert, summary_id)
        assert found is not None and (found.state, found.ts) == (AlertState.POSTED, in_slack)


def test_two_posters_at_once_put_each_case_in_one_message_only(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, db: Database, clock: Any
) -> None:
    other = build_container(engine.settings, db=db, clock=clock).slack
    assert other is not None
    alerts = burst(engine, 300)
    threads = [threading.Thread(target=p.run) for p in (poster, other.poster)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    run_until_settled(engine, poster)
    assert Counter(a for post in fake_slack.successful(POST) for a in shown(post)) == Counter(alerts)
