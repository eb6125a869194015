"""Read-only NPS queries: score, trend, segment comparison and comments, over a period and filters.

Used by `/nps`, App Home and the weekly digest, and ready for a command line: nothing here knows about Slack.
Counting happens in SQL (GROUP BY category) so that a period of 100,000 answers costs a few index scans, not
100,000 Python objects; filters become SQL conditions in `campaigns.scores.filters`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from campaigns.scores import anonymity
from campaigns.scores import nps as npsmath
from campaigns.scores.errors import QueryError
from campaigns.scores.filters import NO_FILTERS, Filters, Scope, fold, property_text
from campaigns.scores.nps import DEFAULT_LOW_SAMPLE_THRESHOLD, Change, Tally
from campaigns.scores.periods import Granularity, Period, add_months, local_midnight
from storage.enums import Category, Channel, InvitationState
from storage.tables import Campaign, Contact, Invitation, Response

NONE_LABEL = "(none)"
MAX_BUCKETS = 120  # ten years by month, two years by week: more would not read as a chart
FAILED_STATES = (InvitationState.FAILED, InvitationState.UNDELIVERABLE)


# --- results ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreReport:
    period: Period
    tally: Tally
    nps: int | None
    margin: float | None
    low_sample: bool
    sent: int  # invitations sent in the period
    delivered: int  # of those, the ones that reached the person
    previous: ScoreReport | None = None
    change: Change | None = None  # against `previous`, None when either period has no answers
    # eNPS: fewer than 5 answers, some of an anonymous campaign (campaigns.scores.anonymity): the tally is empty.
    hidden: bool = False

    @property
    def responses(self) -> int:
        return self.tally.responses

    @property
    def response_rate(self) -> float | None:
        """Responses per delivered invitation."""
        return npsmath.response_rate(self.responses, self.delivered)

    @property
    def response_rate_sent(self) -> float | None:
        return npsmath.response_rate(self.responses, self.sent)

    @property
    def significant(self) -> bool:
        """Whether the change against the previous period is significant at 95%."""
        return self.change is not None and self.change.significant

    @property
    def interval(self) -> npsmath.Interval | None:
        """The 95% interval that holds at small n (adjusted Wald, Rocks 2016), beside the headline margin."""
        return npsmath.adjusted_wald_interval(self.tally)

    @property
    def probability_improved(self) -> float | None:
        """How likely the score really rose since the previous period; None without a comparison."""
        if self.previous is None:
            return None
        return npsmath.probability_improved(self.tally, self.previous.tally)


@dataclass(frozen=True)
class TrendPoint:
    start: datetime  # the bucket's start (Monday or the 1st, local midnight) in UTC
    end: datetime
    tally: Tally
    nps: int | None
    margin: float | None
    hidden: bool = False  # eNPS: see ScoreReport.hidden

    @property
    def responses(self) -> int:
        return self.tally.responses


@dataclass(frozen=True)
class SegmentReport:
    value: str
    tally: Tally
    nps: int | None
    margin: float | None
    low_sample: bool = False
    impact: float | None = None  # points it adds to the overall NPS (npsmath.segment_impact)
    hidden: bool = False  # eNPS: see ScoreReport.hidden

    @property
    def responses(self) -> int:
        return self.tally.responses


@dataclass(frozen=True)
class CommentItem:
    answered_at: datetime
    score: int
    comment: str
    contact_name: str | None
    campaign: str | None
    channel: Channel
    response_id: int = 0
    anonymous: bool = False  # eNPS: no name, and `answered_at` is the day only (anonymity.day_of)

    @property
    def category(self) -> Category:
        return npsmath.categorize(self.score)


@dataclass(frozen=True)
class Page:
    items: list[CommentItem]
    total: int
    page: int
    page_size: int = 5
    hidden: int = 0  # eNPS: comments of anonymous campaigns left out, fewer than 5 matching

    @property
    def has_more(self) -> bool:
        return self.page * self.page_size < self.total

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


# --- filters ---------------------------------------------------------------------------------------------


def _tally(scope: Scope, period: Period) -> Tally:
    counts = scope.count_responses(period, Response.category)
    return Tally(
        promoters=counts[(Category.PROMOTER.value,)],
        passives=counts[(Category.PASSIVE.value,)],
        detractors=counts[(Category.DETRACTOR.value,)],
    )


def _tally_from(counts: Counter[str]) -> Tally:
    return Tally(
        promoters=counts[Category.PROMOTER.value],
        passives=counts[Category.PASSIVE.value],
        detractors=counts[Category.DETRACTOR.value],
    )


# --- score -----------------------------------------------------------------------------------------------


def score(
    *,
    session: Session,
    period: Period,
    filters: Filters = NO_FILTERS,
    low_sample: int = DEFAULT_LOW_SAMPLE_THRESHOLD,
    with_previous: bool = True,
) -> ScoreReport:
    """NPS, margin, counts and response rate for the period, with the previous period and the change."""
    scope = Scope.resolve(session, filters)
    if not with_previous:
        return _score(scope, period, low_sample, _tally(scope, period))
    before = period.previous()
    current_tally, previous_tally = _tallies_side_by_side(scope, before, period)
    report = _score(scope, period, low_sample, current_tally)
    previous = _score(scope, before, low_sample, previous_tally)
    return replace(report, previous=previous, change=npsmath.compare(report.tally, previous.tally))


def _score(scope: Scope, period: Period, low_sample: int, counted: Tally) -> ScoreReport:
    tally, hidden = _shown(scope, period, counted)
    sent, delivered = _invitation_counts(scope, period)
    return ScoreReport(
        period=period,
        tally=tally,
        nps=npsmath.nps(tally),
        margin=npsmath.margin_of_error(tally),
        low_sample=npsmath.is_low_sample(tally, low_sample) and not hidden,
        sent=sent,
        delivered=delivered,
        hidden=hidden,
    )


def _shown(scope: Scope, period: Period, tally: Tally) -> tuple[Tally, bool]:
    """`anonymity.shown_group` for the period's answers under the filters (a filter can name one person); no
    query more when no campaign is anonymous or nothing was answered."""
    if not tally.responses or anonymity.is_anonymous(scope.session) is None:
        return tally, False
    return anonymity.shown_group(scope.session, scope.responses(period), tally)


def _with_anonymity(session: Session, columns: tuple[Any, ...]) -> tuple[Any, ...]:
    """The grouping columns, plus "is this answer anonymous" when some campaign is (nothing extra otherwise)."""
    flag = anonymity.flag_column(session)
    return columns if flag is None else (*columns, flag)


def _tallies_side_by_side(scope: Scope, before: Period, period: Period) -> tuple[Tally, Tally]:
    """(this period's tally, the one before's). PostgreSQL reads both at once: a count that filters on a JSON
    property scans the table there, so two periods in one query cost one scan, not two. SQLite reads each through
    the (category, answered_at) index, where the CASE that tells the periods apart only adds work."""
    if before.end != period.start or scope.session.get_bind().dialect.name == "sqlite":
        return _tally(scope, period), _tally(scope, before)
    both = replace(period, start=before.start)
    which = case((Response.answered_at < period.start, 0), else_=1)
    counts = scope.count_responses(both, which, Response.category)
    tallies = [
        Tally(
            promoters=counts[(index, Category.PROMOTER.value)],
            passives=counts[(index, Category.PASSIVE.value)],
            detractors=counts[(index, Category.DETRACTOR.value)],
        )
        for index in (1, 0)
    ]
    return tallies[0], tallies[1]


def _invitation_counts(scope: Scope, period: Period) -> tuple[int, int]:
    """(sent, delivered) for invitations sent in the period.

    Delivered: confirmed by the carrier, or answered (which proves it arrived), or an email the mail server
    accepted and nobody reported as failed (email has no delivery receipts).
    """
    conditions = scope.invitations(period)
    delivered = or_(
        Invitation.delivered_at.is_not(None),
        Invitation.responded_at.is_not(None),
        and_(Invitation.channel == Channel.EMAIL, Invitation.state.not_in(FAILED_STATES)),
    )
    stmt = (
        select(func.count(), func.coalesce(func.sum(case((delivered, 1), else_=0)), 0))
        .select_from(Invitation)
        .where(*conditions)
    )
    sent, delivered_count = scope.session.execute(stmt).one()
    return int(sent), int(delivered_count)


# --- trend -----------------------------------------------------------------------------------------------


def buckets(period: Period, granularity: Granularity, tz: tzinfo) -> list[datetime]:
    """Bucket starts (local Monday or 1st of the month, midnight, in UTC) covering the period, plus its end."""
    first = period.start.astimezone(tz).date()
    weekly = granularity == "weekly"
    first_day = first - timedelta(days=first.weekday()) if weekly else first.replace(day=1)
    origin = local_midnight(first_day, tz)
    starts = [origin]
    while starts[-1] < period.end:
        if len(starts) > MAX_BUCKETS:
            unit, other = ("weeks", " or `monthly`") if weekly else ("months", "")
            raise QueryError(
                f"that period spans more than {MAX_BUCKETS} {unit}; choose a shorter period{other}"
            )
        n = len(starts)
        starts.append(
            local_midnight(first_day + timedelta(weeks=n), tz) if weekly else add_months(origin, n, tz)
        )
    return starts


def trend(
    *,
    session: Session,
    period: Period,
    filters: Filters = NO_FILTERS,
    granularity: Granularity = "weekly",
    tz: tzinfo | None = None,
) -> list[TrendPoint]:
    """One point per week (starting Monday) or month in `tz` (default: the period's), oldest first.

    The first and last buckets count only the part inside the period.
    """
    zone = tz or period.tz
    edges = buckets(period, granularity, zone)
    scope = Scope.resolve(session, filters)
    if len(edges) < 2:
        return []
    # One pass: a CASE maps each answer to its bucket; portable where date_trunc/strftime are not.
    bucket = case(
        *((Response.answered_at < edge, index) for index, edge in enumerate(edges[1:-1])),
        else_=len(edges) - 2,
    )
    counts: list[Counter[str]] = [Counter() for _ in edges[:-1]]
    grouping = _with_anonymity(session, (bucket, Response.category))
    for keys, count in scope.count_responses(period, *grouping).items():
        index, category = int(keys[0]), keys[1]
        counts[index][category] += count
        if len(keys) > 2 and keys[2]:
            counts[index][anonymity.ANONYMOUS_KEY] += count
    people = anonymity.people_per_group(session, scope, period, bucket, dict(enumerate(counts)), int)
    shown = _visible_tallies(counts, [people.get(index) for index in range(len(counts))])
    return [
        TrendPoint(start, end, tally, npsmath.nps(tally), npsmath.margin_of_error(tally), hidden=hidden)
        for start, end, (tally, hidden) in zip(edges, edges[1:], shown, strict=False)
    ]


def _visible_tallies(counters: list[Counter[str]], people: list[int | None]) -> list[tuple[Tally, bool]]:
    """The groups of one table as shown: each by the eNPS rule, then `anonymity.complement` across them."""
    each = [
        anonymity.shown_tally(_tally_from(counter), counter[anonymity.ANONYMOUS_KEY], anonymous_people)
        for counter, anonymous_people in zip(counters, people, strict=True)
    ]
    sizes = [  # one person's anonymous answers count once: five of them together are not five people
        anonymity.group_size(
            _tally_from(counter).responses, counter[anonymity.ANONYMOUS_KEY], anonymous_people
        )
        for counter, anonymous_people in zip(counters, people, strict=True)
    ]
    hide = anonymity.complement(sizes, [hidden for _, hidden in each])
    return [(Tally(), True) if hidden else shown for shown, hidden in zip(each, hide, strict=True)]


# --- compare ---------------------------------------------------------------------------------------------


def compare(
    *,
    session: Session,
    property: str,
    period: Period,
    filters: Filters = NO_FILTERS,
    low_sample: int = DEFAULT_LOW_SAMPLE_THRESHOLD,
) -> list[SegmentReport]:
    """NPS per value of a contact property (as it was when they answered), best first.

    Values that differ only in case or surrounding spaces are one segment, shown in their most common
    spelling; answers without the property form the "(none)" segment.
    """
    scope = Scope.resolve(session, filters)
    expr = property_text(session, Response.contact_snapshot, property)
    tallies: dict[str, Counter[str]] = {}
    spellings: dict[str, Counter[str]] = {}
    grouping = _with_anonymity(session, (expr, Response.category))
    for keys, count in scope.count_responses(period, *grouping).items():
        value, category = keys[0], keys[1]
        folded = fold(value)
        tallies.setdefault(folded, Counter())[category] += int(count)
        if len(keys) > 2 and keys[2]:
            tallies[folded][anonymity.ANONYMOUS_KEY] += int(count)
        spellings.setdefault(folded, Counter())[str(value).strip() if folded else NONE_LABEL] += int(count)
    people = anonymity.people_per_group(session, scope, period, expr, tallies, fold)
    values = list(tallies)
    shown = _visible_tallies([tallies[v] for v in values], [people.get(v) for v in values])
    segments = []
    for folded, (tally, hidden) in zip(values, shown, strict=True):
        segments.append(
            SegmentReport(
                value=spellings[folded].most_common(1)[0][0],
                tally=tally,
                nps=npsmath.nps(tally),
                margin=npsmath.margin_of_error(tally),
                low_sample=npsmath.is_low_sample(tally, low_sample) and not hidden,
                hidden=hidden,
            )
        )
    segments = _with_impact(segments)
    segments.sort(key=lambda s: (-(s.nps if s.nps is not None else -101), -s.responses, s.value.casefold()))
    return segments


def _with_impact(segments: list[SegmentReport]) -> list[SegmentReport]:
    """Each segment's impact on the overall score; none for a hidden one (eNPS), whose answers a hidden group
    keeps out of the whole as well, so no impact tells how it scored."""
    whole = sum((s.tally for s in segments), Tally())
    return [replace(s, impact=None if s.hidden else npsmath.segment_impact(s.tally, whole)) for s in segments]


# --- comments --------------------------------------------------------------------------------------------


def like_pattern(keyword: str) -> str:
    """A LIKE pattern matching `keyword` anywhere, its own % and _ taken literally (escape "\\")."""
    escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def comments(
    *,
    session: Session,
    category: Category | None = None,
    keyword: str | None = None,
    period: Period,
    filters: Filters = NO_FILTERS,
    page: int = 1,
    page_size: int = 5,
) -> Page:
    """Answers with a comment, newest first, one page at a time (pages count from 1).

    The keyword matches anywhere in the comment without case (on SQLite, case folding covers ASCII only).
    """
    if page < 1 or page_size < 1:
        raise QueryError("pages count from 1")
    scope = Scope.resolve(session, filters)
    conditions = [*scope.responses(period), Response.comment.is_not(None), func.trim(Response.comment) != ""]
    if category is not None:
        conditions.append(Response.category == category.value)
    if keyword and keyword.strip():
        conditions.append(Response.comment.ilike(like_pattern(keyword.strip()), escape="\\"))
    hidden = _hidden_comments(session, conditions)
    if hidden:
        conditions += anonymity.not_anonymous(session)
    total = session.scalar(select(func.count()).select_from(Response).where(*conditions)) or 0
    rows = session.execute(
        select(
            Response.id,
            Response.answered_at,
            Response.score,
            Response.comment,
            Contact.name,
            Campaign.name,
            Response.channel,
            Response.campaign_id,
        )
        .outerjoin(Contact, Contact.id == Response.contact_id)
        .outerjoin(Campaign, Campaign.id == Response.campaign_id)
        .where(*conditions)
        .order_by(Response.answered_at.desc(), Response.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    anonymous_ids = set(anonymity.anonymous_campaign_ids(session))
    items = [_comment_item(row, row.campaign_id in anonymous_ids) for row in rows]
    return Page(items=items, total=int(total), page=page, page_size=page_size, hidden=hidden)


def _hidden_comments(session: Session, conditions: list[ColumnElement[bool]]) -> int:
    """How many comments of anonymous campaigns the listing must leave out: all of them when they are from
    fewer than 5 people (a page of comments is a group like any other; a filter can name one person)."""
    count, people = anonymity.anonymous_people(session, conditions)
    return count if anonymity.must_hide(count, count, people) else 0


def _comment_item(row: Any, anonymous: bool) -> CommentItem:
    """One comment as shown; an anonymous campaign's without a name or response id, on its day only."""
    response_id, answered_at, score_value, comment, contact_name, campaign_name, channel, _ = row
    return CommentItem(
        answered_at=anonymity.day_of(answered_at) if anonymous else answered_at,
        score=int(score_value),
        comment=comment or "",
        contact_name=None if anonymous else contact_name,
        campaign=campaign_name,
        channel=channel,
        response_id=0 if anonymous else int(response_id),
        anonymous=anonymous,
    )
