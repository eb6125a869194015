"""The weekly digest: last week's NPS and its change, response rate, comment themes and those that moved against
the week before, detractors touched in time, follow-ups closed on time."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.chart_blocks import post_with_chart_fallback, trend_chart_blocks, trend_points
from bot.chart_links import ChartLinks, TrendChart
from bot.deps import SlackDeps
from bot.mrkdwn import customer_text, verbatim
from bot.query import formatting
from campaigns.scores import queries
from campaigns.scores.loop import loop_health
from campaigns.scores.periods import Period, local_midnight, unit_start
from campaigns.scores.recovery import recovery_share
from campaigns.scores.themes import ThemesReport, themes
from storage.enums import Category, FollowUpStatus
from storage.tables import FollowUp

THEMES = 5
MOVED = 3
MOVED_POINTS = 0.10  # a theme moved when its share of the comments changed by 10 points or more
MOVED_MENTIONS = 3
RECOVERY_WINDOW = timedelta(days=90)


def _overall(report: ThemesReport) -> Counter[str]:
    """Words and phrases over every category, each counted once per comment."""
    total: Counter[str] = Counter()
    for category in Category:
        total += report.words[category] + report.phrases[category]
    return total


def top_themes(report: ThemesReport, top: int = THEMES) -> list[tuple[str, int]]:
    """The most frequent words and phrases of the comments (a phrase first where it is as frequent)."""
    counts = _overall(report)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], -item[0].count(" "), item[0]))
    return [(term, n) for term, n in ranked[:top] if n > 1]


def moved_themes(now: ThemesReport, before: ThemesReport) -> list[tuple[str, float, float]]:
    """(word, share of comments before, share now): up to MOVED words whose share rose most, then up to MOVED
    whose share fell most, by 10 points at least."""
    n_now, n_before = sum(now.comments.values()), sum(before.comments.values())
    if not n_now or not n_before:
        return []
    words_now, words_before = Counter[str](), Counter[str]()
    for category in Category:
        words_now += now.words[category]
        words_before += before.words[category]
    moved = []
    for word in words_now.keys() | words_before.keys():
        share_now, share_before = words_now[word] / n_now, words_before[word] / n_before
        if (
            max(words_now[word], words_before[word]) >= MOVED_MENTIONS
            and abs(share_now - share_before) >= MOVED_POINTS
        ):
            moved.append((word, share_before, share_now))
    moved.sort(key=lambda item: (-abs(item[2] - item[1]), item[0]))
    return [m for m in moved if m[2] > m[1]][:MOVED] + [m for m in moved if m[2] < m[1]][:MOVED]


def digest_blocks(
    *, session: Session, now: datetime, tz: ZoneInfo, charts: ChartLinks | None = None
) -> list[dict[str, Any]]:
    period = Period(now - timedelta(days=7), now, label="last 7 days", days=7, tz=tz)
    report = queries.score(session=session, period=period)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Weekly NPS digest"}},
        *formatting.score_blocks(report, "last 7 days"),
    ]
    if charts:
        chart = last_weeks_chart(now, tz)
        points = trend_points(session, chart, tz) if charts.public else []
        blocks += trend_chart_blocks(charts, chart, points, now=now, tz=tz)
    this_week = themes(session=session, period=period)
    found = top_themes(this_week)
    if found:
        # words of customers' comments: shown verbatim (`here` must not become @here), each at most 40 characters
        text = "*Top comment themes:* " + ", ".join(f"{customer_text(word, 40)} ({n})" for word, n in found)
        blocks.append({"type": "section", "text": verbatim(text)})
    moved = moved_themes(this_week, themes(session=session, period=period.previous()))
    if moved:
        parts = []
        for side, chosen in (
            ("up", [m for m in moved if m[2] > m[1]]),
            ("down", [m for m in moved if m[2] < m[1]]),
        ):
            if chosen:
                listed = ", ".join(
                    f"{customer_text(word, 40)} {before:.0%} → {after:.0%}" for word, before, after in chosen
                )
                parts.append(f"{side}: {listed}")
        blocks.append({"type": "section", "text": verbatim("*Themes that moved:* " + " · ".join(parts))})
    loop = _loop_line(session, period) + _recovered(session, period)
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": loop}})
    closed = (
        session.scalar(
            select(func.count())
            .select_from(FollowUp)
            .where(FollowUp.status == FollowUpStatus.RESOLVED, FollowUp.resolved_at >= period.start)
        )
        or 0
    )
    on_time = (
        session.scalar(
            select(func.count())
            .select_from(FollowUp)
            .where(
                FollowUp.status == FollowUpStatus.RESOLVED,
                FollowUp.resolved_at >= period.start,
                FollowUp.resolved_at <= FollowUp.due_at,
            )
        )
        or 0
    )
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Follow-ups closed:* {closed} ({on_time} on time)"},
        }
    )
    return blocks


def last_weeks_chart(now: datetime, tz: ZoneInfo, weeks: int = 12) -> TrendChart:
    """The `weeks` whole weeks before the current one: on a Monday morning the current week has no answers yet."""
    monday = unit_start(now.astimezone(tz).date(), "week")
    return TrendChart(
        "weekly", local_midnight(monday - timedelta(weeks=weeks), tz), local_midnight(monday, tz)
    )


def _loop_line(session: Session, period: Period) -> str:
    health = loop_health(session=session, period=period).overall
    if not health.followed_up:
        return "*Detractors touched in time:* no detractors this week"
    share = health.share(health.touched_in_time) or 0
    first = health.median_first_touch
    after = "" if first is None else f", first touch after {first.total_seconds() / 3600:.1f} h (median)"
    return (
        f"*Detractors touched in time:* {health.touched_in_time} of {health.followed_up} ({share:.0%}){after}"
    )


def _recovered(session: Session, period: Period) -> str:
    """Over the 90 days before the digest: a re-survey comes weeks after the resolution, rarely in one week."""
    since = Period(period.end - RECOVERY_WINDOW, period.end)
    recovery = recovery_share(session=session, period=since).overall
    if not recovery.answered:
        return ""
    return (
        f" · *Recovery ({RECOVERY_WINDOW.days} days):* {recovery.rose} of {recovery.answered} detractors who "
        f"answered again after their follow-up scored higher ({recovery.share or 0:.0%})"
    )


def post_digest(deps: SlackDeps) -> None:
    """Post the digest to SLACK_DIGEST_CHANNEL (the scheduler's Monday-morning job)."""
    if not deps.digest_channel:
        return
    with deps.db.transaction() as session:
        blocks = digest_blocks(session=session, now=deps.clock.now(), tz=deps.timezone, charts=deps.charts)
    channel = deps.digest_channel
    post_with_chart_fallback(
        lambda shown: deps.client.chat_postMessage(channel=channel, text="Weekly NPS digest", blocks=shown),
        blocks,
    )
