"""The trend chart as a Slack image block (App Home, the digest, `/nps trend`), and the PNG behind its link.

The block's URL is a signed link to this service (`bot.chart_links`); its alt text says the trend in words for
screen readers and for clients that show no images. Without an https PUBLIC_BASE_URL Slack cannot fetch the image,
so App Home and the digest say why there is no chart instead. Slack fetches the image when the message or view
is posted and refuses the whole payload when it cannot (`invalid_blocks`): it is then posted again without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.chart_links import ChartLinks, TrendChart
from bot.query.charts import trend_png
from bot.query.formatting import describe_period
from campaigns.scores import queries
from campaigns.scores.queries import TrendPoint
from storage.db import Database

log = logging.getLogger(__name__)

Block = dict[str, Any]

MAX_ALT_POINTS = 60  # Slack's alt text holds 2,000 characters; the newest points are the ones that matter
_BUCKET = {"weekly": "week", "monthly": "month"}


def trend_points(session: Session, chart: TrendChart, tz: tzinfo) -> list[TrendPoint]:
    """Where every chart (its PNG, alt text and title) gets its numbers: what queries.trend withholds, no chart
    shows, so a rule on which buckets may be shown belongs there."""
    return queries.trend(
        session=session, period=chart.period(tz), filters=chart.filters, granularity=chart.granularity, tz=tz
    )


def chart_title(chart: TrendChart, tz: tzinfo) -> str:
    """`NPS weekly trend, Sep 7 – Nov 30, 2026 · campaign pulse · sms`: drawn on the PNG served for a link."""
    parts = [f"NPS {chart.granularity} trend, {describe_period(chart.period(tz))}"]
    if chart.campaign:
        parts.append(f"campaign {chart.campaign}")
    if chart.channel:
        parts.append(chart.channel.value)
    return " · ".join(parts)


def alt_text(points: Sequence[TrendPoint], granularity: str) -> str:
    """`NPS by week, oldest first: +32, +35, – (no responses), +41`."""
    lead = f"NPS by {_BUCKET.get(granularity, granularity)}"
    if not any(p.responses for p in points):
        return f"{lead}: no responses in this period"
    shown = points[-MAX_ALT_POINTS:]
    values = ", ".join(_alt_value(p) for p in shown)
    earlier = f"last {len(shown)} of {len(points)}, " if len(shown) < len(points) else ""
    return f"{lead}, {earlier}oldest first: {values}"


def _alt_value(point: TrendPoint) -> str:
    if point.hidden:
        return "hidden (fewer than 5 answers of an anonymous campaign)"
    return "no responses" if point.nps is None else f"{point.nps:+d}"


def image_block(url: str, alt: str, title: str) -> Block:
    return {
        "type": "image",
        "image_url": url,
        "alt_text": alt[:2000],
        "title": {"type": "plain_text", "text": title[:2000]},
    }


def no_chart_note(base_url: str) -> Block:
    text = (
        f"No trend chart: Slack shows only images it can fetch over https, and PUBLIC_BASE_URL is `{base_url}`. "
        "`/nps trend` still sends the chart as a file."
    )
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def trend_chart_blocks(
    links: ChartLinks | None, chart: TrendChart, points: Sequence[TrendPoint], *, now: datetime, tz: tzinfo
) -> list[Block]:
    """The image block for App Home and the digest, or the line that says why there is none."""
    if links is None:
        return []
    if not links.public:
        return [no_chart_note(links.base_url)]
    return [
        image_block(
            links.trend_url(chart, now=now), alt_text(points, chart.granularity), chart_title(chart, tz)
        )
    ]


def render_trend(db: Database, chart: TrendChart, tz: tzinfo) -> bytes:
    """The PNG a link shows: the chart's points read now, drawn with its title."""
    with db.transaction() as session:
        points = trend_points(session, chart, tz)
    return trend_png(points, chart_title(chart, tz), tz=tz)


UNFETCHED_NOTE: Block = {
    "type": "context",
    "elements": [
        {
            "type": "mrkdwn",
            "text": "Slack could not fetch the trend chart from this service (PUBLIC_BASE_URL); "
            "`/nps trend` sends it as a file.",
        }
    ],
}


def has_image(blocks: Sequence[Block]) -> bool:
    return any(block.get("type") == "image" for block in blocks)


def without_images(blocks: Sequence[Block]) -> list[Block]:
    """The blocks with each image replaced by the note that says why it is missing."""
    return [UNFETCHED_NOTE if block.get("type") == "image" else block for block in blocks]


def image_refused(error: str, problems: Sequence[object] = ()) -> bool:
    """Slack's answer when it could not download an image block's URL ("downloading image failed"): messages
    say `invalid_blocks` (a bare one from response_url), views `invalid_arguments` with the reason."""
    if error not in ("invalid_blocks", "invalid_arguments"):
        return False
    return any("image" in str(p) for p in problems) or (error == "invalid_blocks" and not problems)


def _problems(answer: dict[str, Any]) -> list[object]:
    metadata = answer.get("response_metadata")
    messages = metadata.get("messages") if isinstance(metadata, dict) else None
    return [*(answer.get("errors") or ()), *(messages or ())]


def post_with_chart_fallback(post: Callable[[list[Block]], Any], blocks: list[Block]) -> Any:
    """`post(blocks)`; when Slack could not fetch the chart, `post` again without it: the numbers still go."""
    try:
        return post(blocks)
    except SlackApiError as error:
        answer = error.response.data if error.response is not None else {}
        answer = answer if isinstance(answer, dict) else {}
        if not has_image(blocks) or not image_refused(str(answer.get("error", "")), _problems(answer)):
            raise
    log.warning("Slack could not fetch the trend chart; posted without it (check PUBLIC_BASE_URL)")
    return post(without_images(blocks))
