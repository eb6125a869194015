"""The weekly digest, posted by the scheduler's Slack job."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from service.container import Container, build_container
from service.scheduler import Ticker
from tests.fixtures.seeding import Seeder
from tests.standins.fake_slack import FakeSlack


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


def test_the_weekly_digest_posts_score_themes_and_follow_ups(
    engine: Container, fake_slack: FakeSlack
) -> None:
    settings = dataclasses.replace(engine.settings, slack_digest_channel="C0DIGEST")
    container = build_container(settings, db=engine.db, clock=engine.clock)
    seed = Seeder(engine.db)
    yesterday = engine.clock.now() - timedelta(days=1)
    seed.responses([2, 3], at=yesterday, comment="Delivery was late again")
    seed.responses([9], at=yesterday, comment="late delivery but friendly support")
    ticker = Ticker(container, holder="digest-test")
    try:
        assert {job.id for job in ticker.scheduler.get_jobs()} >= {"slack_alerts", "follow_ups", "digest"}
        ticker.post_digest()
    finally:
        ticker.dispatcher.close()
    [digest] = fake_slack.successful("chat.postMessage")
    text = json.dumps(digest["blocks"])
    assert digest["channel"] == "C0DIGEST"
    assert "Weekly NPS digest" in text and "late (3)" in text and "delivery (3)" in text
    assert "Follow-ups closed:* 0" in text


def test_the_digest_says_which_themes_moved_and_how_the_loop_is_doing(
    engine: Container, fake_slack: FakeSlack
) -> None:
    """The week before: 10 comments, 1 mentions billing (10%). This week: 8 comments, 4 mention billing (50%):
    rising, by 40 points ("errors", new, by 50; "lovely app" fell from 90% to 25%). Two detractors this week: one acknowledged after 2 hours, one untouched."""
    from campaigns.followups.actions import acknowledge

    settings = dataclasses.replace(engine.settings, slack_digest_channel="C0DIGEST")
    container = build_container(settings, db=engine.db, clock=engine.clock)
    seed = Seeder(engine.db)
    now = engine.clock.now()
    seed.responses([9], at=now - timedelta(days=10), comment="billing was odd")
    seed.responses([9] * 9, at=now - timedelta(days=10), comment="lovely app")
    seed.responses([8] * 4, at=now - timedelta(days=2), comment="billing errors")
    seed.responses([9] * 2, at=now - timedelta(days=2), comment="lovely app")
    touched = seed.detractor(at=now - timedelta(days=1), comment="support slow")
    seed.detractor(at=now - timedelta(days=1), comment="support slow")
    assert acknowledge(engine.db, touched, user="U0ANA", now=now - timedelta(hours=22))
    ticker = Ticker(container, holder="digest-test")
    try:
        ticker.post_digest()
    finally:
        ticker.dispatcher.close()
    [digest] = fake_slack.successful("chat.postMessage")
    text = json.dumps(digest["blocks"], ensure_ascii=False)
    assert "*Themes that moved:* up: errors 0% → 50%, billing 10% → 50% · down: app 90% → 25%" in text
    assert "*Detractors touched in time:* 1 of 2 (50%), first touch after 2.0 h (median)" in text


def test_the_loop_line_says_how_many_detractors_who_answered_again_scored_higher(
    engine: Container, fake_slack: FakeSlack
) -> None:
    """Over the 90 days before the digest: two detractors resolved a month ago answered the campaign again, one
    higher (3 -> 9), one not (2 -> 2)."""
    from campaigns.followups.actions import resolve
    from tests.campaigns.scores.test_recovery import detractor

    settings = dataclasses.replace(engine.settings, slack_digest_channel="C0DIGEST")
    container = build_container(settings, db=engine.db, clock=engine.clock)
    seed = Seeder(engine.db)
    now = engine.clock.now()
    pulse = seed.campaign("pulse")
    for score, again in ((3, 9), (2, 2)):
        contact = seed.contact()
        follow_up = detractor(engine.db, contact, pulse, score, now - timedelta(days=40))
        assert resolve(
            engine.db, follow_up, user="U0ANA", note="called", method=None, now=now - timedelta(days=30)
        )
        seed.responses([again], at=now - timedelta(days=15), contact_id=contact, campaign_id=pulse)
    ticker = Ticker(container, holder="digest-test")
    try:
        ticker.post_digest()
    finally:
        ticker.dispatcher.close()
    [digest] = fake_slack.successful("chat.postMessage")
    text = json.dumps(digest["blocks"], ensure_ascii=False)
    assert (
        "*Detractors touched in time:* no detractors this week · *Recovery (90 days):* 1 of 2 detractors who "
        "answered again after their follow-up scored higher (50%)"
    ) in text
