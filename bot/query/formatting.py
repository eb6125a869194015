"""Slack answers for `/nps`: pure builders from query results to mrkdwn text and Block Kit blocks.

Only section, context and divider blocks with mrkdwn text; at most 50 blocks and 3,000 characters per text,
as Slack requires. Customers' text (comments, names, property values) goes through `bot.mrkdwn`: escaped, cut
before escaping and shown verbatim, so a comment cannot mention @channel, forge a link or link a #channel.
What the asker typed (filters, titles) is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, tzinfo
from typing import Any

from bot.mrkdwn import customer_text, cut, escape, quote, verbatim
from bot.query.grammar import GrammarError, filters_text
from campaigns.scores.anonymity import ANONYMOUS_LABEL, HIDDEN_NOTE, MIN_GROUP
from campaigns.scores.filters import Filters
from campaigns.scores.nps import Benchmark
from campaigns.scores.periods import Period
from campaigns.scores.queries import CommentItem, Page, ScoreReport, SegmentReport, TrendPoint
from campaigns.scores.trend_change import LastChange, last_change
from storage.enums import Category

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_FIELD = 2000
MAX_COMMENT = 700  # characters of a comment as sent, escapes included
MAX_NAME = 100
MAX_SEGMENTS = 30
HIDDEN_ROW = f"hidden: fewer than {MIN_GROUP} answers"
CATEGORY_EMOJI = {
    Category.PROMOTER: ":large_green_circle:",
    Category.PASSIVE: ":large_yellow_circle:",
    Category.DETRACTOR: ":red_circle:",
}


# --- small pieces ----------------------------------------------------------------------------------------


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def signed(value: int | float | None) -> str:
    if value is None:
        return "n/a"
    rounded = round(value)
    return f"+{rounded}" if rounded > 0 else str(rounded)


def plus_minus(margin: float | None) -> str:
    if margin is None:
        return ""
    return f"±{margin:.1f}" if 0 < margin < 1 else f"±{margin:.0f}"


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


def describe_period(period: Period) -> str:
    """`last 30 days (Apr 14 – May 14, 2026)`: the label with the local dates it covers."""
    first, last = period.local_dates()
    if first == last:
        dates = f"{first:%b} {first.day}, {first.year}"
    elif first.year == last.year:
        dates = f"{first:%b} {first.day} – {last:%b} {last.day}, {last.year}"
    else:
        dates = f"{first:%b} {first.day}, {first.year} – {last:%b} {last.day}, {last.year}"
    return f"{period.label} ({dates})" if period.label else dates


def describe_filters(filters: Filters) -> str:
    return escape(filters_text(filters))


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text)}}


def _customer_section(text: str) -> Block:
    """A section with customer text in it, built within the limit (`bot.mrkdwn`), so it is never clipped here."""
    return {"type": "section", "text": verbatim(text)}


def _context(*texts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(t)} for t in texts[:10] if t]}


def _divider() -> Block:
    return {"type": "divider"}


def _scope_line(period_label: str, filters_label: str) -> str:
    return " · ".join(part for part in (period_label, filters_label) if part)


# --- score -----------------------------------------------------------------------------------------------


def score_blocks(
    report: ScoreReport, period_label: str, filters_label: str = "", benchmark: Benchmark | None = None
) -> list[Block]:
    """NPS ± margin, the three counts, response rate, the change against the previous period, low sample."""
    scope = _scope_line(period_label, filters_label)
    if report.hidden:
        return [_section(f"*NPS hidden* in {scope}: {HIDDEN_NOTE}.")]
    if report.responses == 0:
        return [
            _section(f"*No responses* in {scope}."),
            _context(_rate_line(report)),
        ]
    tally, n = report.tally, report.responses
    blocks = [
        _section(f"*NPS {signed(report.nps)}* {plus_minus(report.margin)}  ·  {n} responses\n{scope}"),
        {
            "type": "section",
            "fields": [
                {
                    "type": "mrkdwn",
                    "text": f"{CATEGORY_EMOJI[Category.PROMOTER]} *Promoters* {tally.promoters} ({tally.promoters / n:.0%})",
                },
                {
                    "type": "mrkdwn",
                    "text": f"{CATEGORY_EMOJI[Category.PASSIVE]} *Passives* {tally.passives} ({tally.passives / n:.0%})",
                },
                {
                    "type": "mrkdwn",
                    "text": f"{CATEGORY_EMOJI[Category.DETRACTOR]} *Detractors* {tally.detractors} ({tally.detractors / n:.0%})",
                },
            ],
        },
        _context(_change_line(report), _rate_line(report)),
    ]
    if benchmark is not None and report.nps is not None:
        gap = benchmark.gap(report.nps)
        blocks.append(_context(f"Benchmark ({escape(benchmark.label)}): {signed(benchmark.score)} · {gap}"))
    if report.low_sample:
        blocks.append(
            _context(
                f":warning: *low sample*: {n} responses; the score can move a lot with a few more answers."
                f"{_small_sample_interval(report)}"
            )
        )
    return blocks


def _small_sample_interval(report: ScoreReport) -> str:
    """The adjusted-Wald interval, rounded outwards to whole points: it does not collapse when every answer is
    a promoter, as the headline margin does."""
    interval = report.interval
    if interval is None:
        return ""
    low, high = math.floor(interval.low), math.ceil(interval.high)
    return f" 95% interval at this sample size: {signed(low)} to {signed(high)}."


def _change_line(report: ScoreReport) -> str:
    if report.previous is None:
        return ""
    if report.change is None:
        return "No responses in the previous period to compare with."
    delta = report.change.delta
    arrow = "▲" if round(delta) > 0 else "▼" if round(delta) < 0 else "="
    flag = " *(significant)*" if report.significant else _likelihood(report)
    return f"{arrow} {signed(delta)} vs the previous period (NPS {signed(report.previous.nps)}){flag}"


def _likelihood(report: ScoreReport) -> str:
    """Where the intervals overlap, how likely the change is real rather than sampling noise."""
    rose = report.probability_improved
    if rose is None or round(report.change.delta if report.change else 0) == 0:
        return ""
    if rose >= 0.5:
        return f" · {rose:.0%} likely a real rise"
    return f" · {1 - rose:.0%} likely a real drop"


def _rate_line(report: ScoreReport) -> str:
    return (
        f"Response rate {percent(report.response_rate)} of {report.delivered} delivered, "
        f"{percent(report.response_rate_sent)} of {report.sent} sent"
    )


# --- trend -----------------------------------------------------------------------------------------------


def _bucket_label(point: TrendPoint, tz: tzinfo) -> str:
    local = point.start.astimezone(tz)
    monthly = (point.end - point.start).days > 7
    return f"{local:%b %Y}" if monthly else f"wk of {local:%b} {local.day:>2}"


def trend_text(points: Sequence[TrendPoint], title: str = "", *, tz: tzinfo = UTC) -> str:
    """The numbers behind the chart as an aligned table, oldest first (the newest are kept if it is long)."""
    if not points:
        return f"{escape(title)}\nNo responses in this period." if title else "No responses in this period."
    lines = [
        f"{_bucket_label(p, tz):<13} {HIDDEN_ROW}"
        if p.hidden
        else f"{_bucket_label(p, tz):<13} {signed(p.nps) if p.nps is not None else '–':>5} "
        f"{plus_minus(p.margin):>5}  n={p.responses}"
        for p in points
    ]
    header = f"*{escape(title)}*\n" if title else ""
    footer = f"\n_Hidden: {HIDDEN_NOTE}._" if any(p.hidden for p in points) else ""
    budget = MAX_TEXT - len(header) - len(footer) - 10
    while len("\n".join(lines)) > budget:
        lines.pop(0)
    return f"{header}```{chr(10).join(lines)}```{footer}"


def trend_blocks(points: Sequence[TrendPoint], title: str, *, tz: tzinfo = UTC) -> list[Block]:
    blocks = [_section(trend_text(points, title, tz=tz))]
    step = last_change(points)
    if step is not None:
        blocks.append(_context(last_change_line(step, tz)))
    return blocks


def last_change_line(step: LastChange, tz: tzinfo = UTC) -> str:
    """`Last change: ▲ +4 (wk of May 11 against wk of Apr 20), within the margins · 64% likely a real rise`:
    the last bucket with answers against the one before it, with the test `score` uses."""
    delta = step.change.delta
    arrow = "▲" if round(delta) > 0 else "▼" if round(delta) < 0 else "="
    when = f"{_bucket_label(step.latest, tz)} against {_bucket_label(step.previous, tz)}".replace("  ", " ")
    if step.significant:
        reading = "*significant* at 95%"
    else:
        reading = "within the margins"
        rose = step.probability_improved
        if rose is not None and round(delta) != 0:
            reading += (
                f" · {rose:.0%} likely a real rise"
                if rose >= 0.5
                else f" · {1 - rose:.0%} likely a real drop"
            )
    return f"Last change: {arrow} {signed(delta)} ({when}), {reading}"


# --- compare ---------------------------------------------------------------------------------------------


def compare_blocks(
    segments: Sequence[SegmentReport], property: str, period_label: str, filters_label: str = ""
) -> list[Block]:
    """NPS per value of a property, best first, as an aligned table; low samples marked with *."""
    scope = _scope_line(period_label, filters_label)
    title = f"*NPS by {escape(clip(property, 100))}* · {scope}"
    if not segments:
        return [_section(f"{title}\nNo responses in this period.")]
    width = min(24, max(len(s.value) for s in segments[:MAX_SEGMENTS]))
    # The values are customers' (property values): cut to the column as shown, then escaped, so a row can be
    # longer than it looks; rows stop where the section would pass Slack's limit.
    budget, rows = MAX_TEXT - len(title) - 10, []
    for s in segments[:MAX_SEGMENTS]:
        value = cut(s.value, width)
        numbers = (
            HIDDEN_ROW
            if s.hidden
            else f"{signed(s.nps):>5} {plus_minus(s.margin):>5}  "
            f"{'n=' + str(s.responses):<7} impact {signed(s.impact):>4}{' *' if s.low_sample else ''}"
        )
        row = f"{escape(value)}{' ' * (width - len(value))}  {numbers}"
        budget -= len(row) + 1
        if budget < 0:
            break
        rows.append(row)
    table = "```" + "\n".join(rows) + "```"
    notes = []
    if len(segments) > len(rows):
        notes.append(f"…and {len(segments) - len(rows)} more values.")
    if any(s.low_sample for s in segments):
        notes.append("* low sample: few responses, read with care.")
    notes.append(
        "impact: the points a value adds to the overall NPS, which would move by minus that "
        "if it scored like the rest."
    )
    if any(s.hidden for s in segments):
        notes.append(f"Hidden: {HIDDEN_NOTE}.")
    blocks = [_customer_section(f"{title}\n{table}")]
    if notes:
        blocks.append(_context(" ".join(notes)))
    return blocks


# --- comments --------------------------------------------------------------------------------------------


def comments_blocks(
    page: Page,
    period_label: str,
    filters_label: str = "",
    *,
    next_command: str | None = None,
    tz: tzinfo = UTC,
) -> list[Block]:
    """One section and one context line per comment, newest first, with a hint for the next page."""
    scope = _scope_line(period_label, filters_label)
    hidden = _hidden_comments_line(page)
    if page.total == 0:
        return [_section(f"No comments in {scope}."), *([_context(hidden)] if hidden else [])]
    if not page.items:
        return [
            _section(f"There are {page.total} comments in {scope}; page {page.page} is past the last one.")
        ]
    first = (page.page - 1) * page.page_size + 1
    last = first + len(page.items) - 1
    blocks: list[Block] = [_context(f"Comments {first}–{last} of {page.total} · {scope}", hidden)]
    for item in page.items:
        about = [f"{CATEGORY_EMOJI[item.category]} *{item.score}*", _who(item)]
        if item.campaign:
            about.append(escape(item.campaign))
        about += [item.channel.value, _when(item, tz)]
        blocks += [
            _customer_section(quote(item.comment, MAX_COMMENT, marker="> ")),
            {"type": "context", "elements": [verbatim(" · ".join(about))]},
        ]
    if page.has_more:
        hint = f"More: `{escape(next_command)}`" if next_command else f"Page {page.page} of {page.pages}."
        blocks += [_divider(), _context(hint)]
    return blocks[:MAX_BLOCKS]


def _who(item: CommentItem) -> str:
    if item.anonymous:
        return ANONYMOUS_LABEL
    return customer_text(item.contact_name, MAX_NAME) if item.contact_name else "unknown contact"


def _when(item: CommentItem, tz: tzinfo) -> str:
    """The day and time of a comment; an anonymous campaign's by its (UTC) day only, as the query gives it."""
    if item.anonymous:
        return f"{item.answered_at:%b} {item.answered_at.day}"
    local = item.answered_at.astimezone(tz)
    return f"{local:%b} {local.day}, {local:%H:%M}"


def _hidden_comments_line(page: Page) -> str:
    if not page.hidden:
        return ""
    return f"{page.hidden} comments of anonymous campaigns not shown: {HIDDEN_NOTE}."


# --- help and errors -------------------------------------------------------------------------------------


def help_blocks(help_text: str) -> list[Block]:
    """The help, one section per paragraph so that no section passes Slack's length limit."""
    return [_section(part) for part in help_text.split("\n\n") if part.strip()][:MAX_BLOCKS]


def error_text(error: GrammarError) -> str:
    """What a person sees for input `/nps` did not understand: the problem and a command that works."""
    return f"{escape(error.message)}\nTry `{escape(error.example)}` or `/nps help`."
