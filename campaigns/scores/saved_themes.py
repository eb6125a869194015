"""Saved themes: a keyword or phrase tracked over time, its mention rate among comments and the NPS of those who
mention it (`nps themes add|list|show`). One GROUP BY per report, as the trend does.

A theme keeps the `/nps` query it was saved with as text ("campaign:pulse plan=pro"); the caller parses it, so
that the grammar stays in one place. The phrase matches anywhere in a comment, without case (on SQLite, case
folding covers ASCII only, as in `/nps comments`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from campaigns.scores import anonymity
from campaigns.scores import nps as npsmath
from campaigns.scores.errors import QueryError
from campaigns.scores.filters import NO_FILTERS, Filters, Scope
from campaigns.scores.periods import Granularity, Period
from campaigns.scores.queries import buckets, like_pattern
from storage.tables import Response, SavedTheme

MAX_NAME = 60
MAX_PHRASE = 200


@dataclass(frozen=True)
class ThemePoint:
    start: datetime
    end: datetime
    comments: int  # comments in the bucket (non-empty)
    mentions: npsmath.Tally  # the answers whose comment mentions the phrase
    hidden: bool = False  # eNPS: too few mentions (or comments), some anonymous; those counts are then 0

    @property
    def rate(self) -> float | None:
        return self.mentions.responses / self.comments if self.comments and not self.hidden else None

    @property
    def nps(self) -> int | None:
        return npsmath.nps(self.mentions)


def add_theme(name: str, phrase: str, query: str, *, session: Session, now: datetime) -> SavedTheme:
    name, phrase = name.strip(), phrase.strip()
    if not 0 < len(name) <= MAX_NAME:
        raise QueryError(f"a theme's name has 1 to {MAX_NAME} characters")
    if not 0 < len(phrase) <= MAX_PHRASE:
        raise QueryError(f"a theme's phrase has 1 to {MAX_PHRASE} characters")
    if get_theme(name, session=session) is not None:
        raise QueryError(f"there is already a theme called `{name}`")
    theme = SavedTheme(name=name, phrase=phrase, query=query.strip(), created_at=now)
    session.add(theme)
    session.flush()
    return theme


def get_theme(name: str, *, session: Session) -> SavedTheme | None:
    return session.scalar(select(SavedTheme).where(SavedTheme.name == name.strip()))


def list_themes(*, session: Session) -> list[SavedTheme]:
    return list(session.scalars(select(SavedTheme).order_by(SavedTheme.name)))


def remove_theme(name: str, *, session: Session) -> bool:
    theme = get_theme(name, session=session)
    if theme is not None:
        session.delete(theme)
    return theme is not None


def theme_trend(
    phrase: str,
    *,
    session: Session,
    period: Period,
    filters: Filters = NO_FILTERS,
    granularity: Granularity = "weekly",
    tz: tzinfo | None = None,
) -> list[ThemePoint]:
    """Per week or month: comments, and the answers that mention the phrase by category."""
    edges = buckets(period, granularity, tz or period.tz)
    if len(edges) < 2:
        return []
    scope = Scope.resolve(session, filters)
    bucket = case(
        *((Response.answered_at < edge, index) for index, edge in enumerate(edges[1:-1])),
        else_=len(edges) - 2,
    )
    flag = anonymity.flag_column(session)
    grouping: list[Any] = [bucket, _mentions(phrase), Response.category, *([] if flag is None else [flag])]
    comments = [0] * (len(edges) - 1)
    mentioned: list[Counter[str]] = [Counter() for _ in comments]
    anonymous_comments = [0] * len(comments)
    for keys, count in scope.count_responses(period, *grouping, where=_commented()).items():
        index, mention, category = int(keys[0]), keys[1], keys[2]
        anonymous_count = count if len(keys) > 3 and keys[3] else 0
        comments[int(index)] += int(count)
        anonymous_comments[int(index)] += int(anonymous_count)
        if mention:
            mentioned[int(index)][str(category)] += int(count)
            mentioned[int(index)][anonymity.ANONYMOUS_KEY] += int(anonymous_count)
    writers = anonymity.people_per_group(
        session,
        scope,
        period,
        bucket,
        {i: Counter({anonymity.ANONYMOUS_KEY: n}) for i, n in enumerate(anonymous_comments)},
        int,
        _commented(),
    )
    mentioners = anonymity.people_per_group(
        session,
        scope,
        period,
        bucket,
        dict(enumerate(mentioned)),
        int,
        [*_commented(), _mentions(phrase) == 1],
    )
    return [
        _point(start, end, total, anonymous_total, c, (writers.get(index), mentioners.get(index)))
        for index, (start, end, total, anonymous_total, c) in enumerate(
            zip(edges, edges[1:], comments, anonymous_comments, mentioned, strict=False)
        )
    ]


def theme_total(
    phrase: str, *, session: Session, period: Period, filters: Filters = NO_FILTERS
) -> ThemePoint:
    """The whole period at once: comments, and the answers that mention the phrase by category."""
    scope = Scope.resolve(session, filters)
    flag = anonymity.flag_column(session)
    grouping: list[Any] = [_mentions(phrase), Response.category, *([] if flag is None else [flag])]
    total = anonymous = 0
    mentioned: Counter[str] = Counter()
    for keys, count in scope.count_responses(period, *grouping, where=_commented()).items():
        anonymous_count = count if len(keys) > 2 and keys[2] else 0
        total, anonymous = total + count, anonymous + anonymous_count
        if keys[0]:
            mentioned[str(keys[1])] += count
            mentioned[anonymity.ANONYMOUS_KEY] += anonymous_count
    people: tuple[int | None, int | None] = (None, None)
    if anonymous:  # a filter can narrow to one person: their comments count once
        conditions = [*scope.responses(period), *_commented()]
        people = (
            anonymity.anonymous_people(session, conditions)[1],
            anonymity.anonymous_people(session, [*conditions, _mentions(phrase) == 1])[1],
        )
    return _point(period.start, period.end, total, anonymous, mentioned, people)


def _mentions(phrase: str) -> ColumnElement[int]:
    return case((Response.comment.ilike(like_pattern(phrase.strip()), escape="\\"), 1), else_=0)


def _commented() -> list[ColumnElement[bool]]:
    return [Response.comment.is_not(None), func.trim(Response.comment) != ""]


def _point(
    start: datetime,
    end: datetime,
    total: int,
    anonymous: int,
    mentioned: Counter[str],
    people: tuple[int | None, int | None] = (None, None),
) -> ThemePoint:
    """A bucket as shown; hidden by the eNPS rule when its comments or its mentions are too few, or from too
    few people (`people`: who wrote its anonymous comments, who of them mention the phrase)."""
    tally = npsmath.Tally(mentioned["promoter"], mentioned["passive"], mentioned["detractor"])
    writers, mentioners = people
    if anonymity.must_hide(total, anonymous, writers):
        return ThemePoint(start, end, 0, npsmath.Tally(), hidden=True)
    if anonymity.must_hide(tally.responses, mentioned[anonymity.ANONYMOUS_KEY], mentioners):
        return ThemePoint(start, end, total, npsmath.Tally(), hidden=True)
    return ThemePoint(start, end, total, tally)
