"""Saved themes in Slack: `/nps themes [period]` lists them with their mention rate and NPS against the period
before, `/nps theme NAME [weekly|monthly] [period]` shows one per bucket, and `/nps themes add|remove` (admins,
SLACK_ADMIN_USERS, as campaign control) manage them.

A theme keeps its filters as `/nps` text (campaigns/scores/saved_themes.py); it is parsed again here with the
grammar, as `nps themes show` does. Names and phrases are what people typed: escaped, never verbatim links.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy.orm import Session

from bot.mrkdwn import cut, escape
from bot.query import formatting
from bot.query.grammar import GrammarError, ThemeChange, ThemeQuery, ThemesQuery, filters_text, parse
from bot.query.tokens import quote
from campaigns.privacy import mask_text
from campaigns.scores.errors import QueryError
from campaigns.scores.filters import NO_FILTERS, Filters
from campaigns.scores.periods import Period
from campaigns.scores.saved_themes import (
    ThemePoint,
    add_theme,
    get_theme,
    list_themes,
    remove_theme,
    theme_total,
    theme_trend,
)
from storage.audit import record_audit
from storage.enums import AuditAction, AuditEntity
from storage.tables import SavedTheme

Block = dict[str, Any]
ThemeCommand = ThemesQuery | ThemeQuery | ThemeChange
THEME_COMMANDS = (ThemesQuery, ThemeQuery, ThemeChange)
SLOW_THEME_COMMANDS = (ThemesQuery, ThemeQuery)  # they read the period's comments
MAX_LISTED = 40  # one section each, within Slack's 50 blocks


def theme_answer(
    query: ThemeCommand, *, user: str, is_admin: bool, session: Session, now: datetime, tz: tzinfo
) -> tuple[str, list[Block]]:
    """(text, blocks) of the answer."""
    if isinstance(query, ThemeChange):
        return _change(query, user=user, is_admin=is_admin, session=session, now=now)
    if isinstance(query, ThemeQuery):
        return _one(query, session=session, now=now, tz=tz)
    return _listed(query, session=session, now=now, tz=tz)


def _saved_filters(theme: SavedTheme, now: datetime, tz: tzinfo) -> Filters:
    parsed = parse(f"score {theme.query}", now, tz)
    return getattr(parsed, "filters", NO_FILTERS)


def _said(text: str) -> tuple[str, list[Block]]:
    return text, [_section(text)]


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": formatting.clip(text)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": formatting.clip(text)}]}


def _title(theme: SavedTheme) -> str:
    # A filter on an email or a phone would name a customer to everyone who lists the themes.
    within = f" · {escape(cut(mask_text(theme.query), 200))}" if theme.query else ""
    return f"*{escape(theme.name)}* — “{escape(theme.phrase)}”{within}"


# --- list -------------------------------------------------------------------------------------------------


def _listed(query: ThemesQuery, *, session: Session, now: datetime, tz: tzinfo) -> tuple[str, list[Block]]:
    themes = list_themes(session=session)
    label = formatting.describe_period(query.period)
    if not themes:
        return _said('No saved themes yet; an admin adds one with `/nps themes add NAME "PHRASE" [filters]`.')
    blocks = [_section(f"*Saved themes* · {escape(label)}")]
    for theme in themes[:MAX_LISTED]:
        blocks.append(_section(f"{_title(theme)}\n{_summary(theme, query.period, session, now, tz)}"))
    if len(themes) > MAX_LISTED:
        blocks.append(_context(f"…and {len(themes) - MAX_LISTED} more themes."))
    blocks.append(_context("`/nps theme NAME` shows one week by week."))
    return f"Saved themes, {label}", blocks


def _summary(theme: SavedTheme, period: Period, session: Session, now: datetime, tz: tzinfo) -> str:
    try:
        filters = _saved_filters(theme, now, tz)
        current = theme_total(theme.phrase, session=session, period=period, filters=filters)
        before = theme_total(theme.phrase, session=session, period=period.previous(), filters=filters)
    except (GrammarError, QueryError) as error:  # a campaign since renamed, say
        return f":warning: cannot be counted: {escape(str(getattr(error, 'message', error)))}"
    return f"{_mentions(current, 'comments')} · previous period: {_mentions(before)}"


def _mentions(point: ThemePoint, unit: str = "") -> str:
    """`4 of 8 comments (50%), NPS -50`."""
    rate = f" ({formatting.percent(point.rate)})" if point.rate is not None else ""
    nps = f", NPS {formatting.signed(point.nps)}" if point.nps is not None else ""
    return f"{point.mentions.responses} of {point.comments}{' ' + unit if unit else ''}{rate}{nps}"


# --- one theme over time ----------------------------------------------------------------------------------


def _one(query: ThemeQuery, *, session: Session, now: datetime, tz: tzinfo) -> tuple[str, list[Block]]:
    theme = get_theme(query.name, session=session)
    if theme is None:
        return _said(f"There is no theme called `{escape(cut(query.name, 60))}`; `/nps themes` lists them.")
    try:
        points = theme_trend(
            theme.phrase,
            session=session,
            period=query.period,
            filters=_saved_filters(theme, now, tz),
            granularity=query.granularity,
            tz=tz,
        )
    except (GrammarError, QueryError) as error:
        return _said(f":warning: Theme *{escape(theme.name)}* cannot be counted: {escape(str(error))}")
    monthly = query.granularity == "monthly"
    lines = [f"{_bucket(point, tz, monthly):<13} {_mentions(point)}" for point in points]
    title = f"Theme {_title(theme)} · {escape(formatting.describe_period(query.period))}"
    budget = formatting.MAX_TEXT - len(title) - 10
    while lines and len("\n".join(lines)) > budget:
        lines.pop(0)
    table = "```" + "\n".join(lines or ["No buckets in this period."]) + "```"
    note = "Per bucket: comments that mention it, of all comments (rate), and the NPS of those who do."
    return f"Theme {theme.name}", [_section(f"{title}\n{table}"), _context(note)]


def _bucket(point: ThemePoint, tz: tzinfo, monthly: bool) -> str:
    local = point.start.astimezone(tz)
    return f"{local:%b %Y}" if monthly else f"wk of {local:%b} {local.day:>2}"


# --- add and remove (admins) ------------------------------------------------------------------------------


def _change(
    query: ThemeChange, *, user: str, is_admin: bool, session: Session, now: datetime
) -> tuple[str, list[Block]]:
    actor = f"slack:{user}"
    if not is_admin:
        record_audit(
            session=session,
            actor=actor,
            action=AuditAction.THEME_CHANGE_REFUSED,
            entity_type=AuditEntity.THEME,
            entity_id=query.name,
            requested=query.change,
        )
        return _said(":no_entry: Only admins (SLACK_ADMIN_USERS) can add or remove saved themes.")
    if query.change == "remove":
        if not remove_theme(query.name, session=session):
            return _said(
                f"There is no theme called `{escape(cut(query.name, 60))}`; `/nps themes` lists them."
            )
        record_audit(
            session=session,
            actor=actor,
            action=AuditAction.THEME_REMOVED,
            entity_type=AuditEntity.THEME,
            entity_id=query.name,
        )
        return _said(f"Theme *{escape(query.name)}* removed.")
    text = filters_text(query.filters)
    try:
        theme = add_theme(query.name, query.phrase, text, session=session, now=now)
    except QueryError as error:
        return _said(f":warning: {escape(str(error))}")
    record_audit(
        session=session,
        actor=actor,
        action=AuditAction.THEME_SAVED,
        entity_type=AuditEntity.THEME,
        entity_id=theme.name,
        phrase=theme.phrase,
        query=theme.query,
    )
    shown = escape(quote(theme.name))
    return _said(f"Theme saved: {_title(theme)}. `/nps theme {shown}` shows it week by week.")
