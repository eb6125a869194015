"""App Home: the score over the last 30 and 90 days, the viewer's open follow-ups, the campaigns."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.chart_blocks import trend_chart_blocks, trend_points
from bot.chart_links import ChartLinks, TrendChart, hour_after
from campaigns.definitions.store import summaries
from campaigns.scores import queries
from campaigns.scores.periods import Period, whole_buckets
from storage.db import Database
from storage.enums import FollowUpStatus
from storage.tables import FollowUp


def home_view(
    db: Database, user_id: str, *, now: datetime, tz: ZoneInfo, charts: ChartLinks | None = None
) -> dict[str, Any]:
    lines = []
    # The last 12 weeks, like `/nps trend`; the end rounded up to the hour keeps the chart's URL for an hour.
    chart = TrendChart("weekly", whole_buckets("weekly", 12, now=now, tz=tz).start, hour_after(now))
    with db.transaction() as session:
        for days in (30, 90):
            report = queries.score(
                session=session, period=Period(now - timedelta(days=days), now, tz=tz), with_previous=False
            )
            value = "–" if report.nps is None else f"{report.nps:+d}"
            lines.append(f"*NPS, last {days} days:* {value} ({report.responses} responses)")
        mine = session.scalar(
            select(func.count())
            .select_from(FollowUp)
            .where(FollowUp.assignee == user_id, FollowUp.status != FollowUpStatus.RESOLVED)
        )
        overdue = session.scalar(
            select(func.count())
            .select_from(FollowUp)
            .where(FollowUp.due_at < now, FollowUp.status != FollowUpStatus.RESOLVED)
        )
        campaigns = summaries(session=session)
        points = trend_points(session, chart, tz) if charts and charts.public else []
    lines.append(f"*Your open follow-ups:* {mine or 0} · *overdue (all):* {overdue or 0}")
    lines.append(
        "*Campaigns:* " + (", ".join(f"{c.name} ({c.status.value})" for c in campaigns) or "none yet")
    )
    return {
        "type": "home",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Net Promoter Score"}},
            *({"type": "section", "text": {"type": "mrkdwn", "text": line}} for line in lines),
            *trend_chart_blocks(charts, chart, points, now=now, tz=tz),
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "`/nps help` lists every question you can ask."}],
            },
        ],
    }
