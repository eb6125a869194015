"""eNPS: the one rule for answers of campaigns marked `anonymous: true`, used by every output.

1. No output links such an answer to a person: no name, phone, email, external id, contact id or contact
   property beside it, and its time only as the day it was given (`day_of`).
2. No group smaller than MIN_GROUP answers that holds any of them is shown: a score, a trend bucket, a segment,
   a driver value, an account, a theme or term, a page of comments. `must_hide` decides; the query layer counts
   the anonymous answers of a group with `anonymous_answers` (the SQL side of the same rule) and, for a hidden
   group, shows HIDDEN_NOTE instead of its numbers. Where a filter or a segment can narrow to one person (a
   score, a segment, the comments), the anonymous answers count once per person (`anonymous_people`): five
   monthly pulses of one employee are one person's answers, not a group of five. The groups of one table (the
   buckets of a trend, the segments of a compare) add up to the score of the same period, which is shown: a
   lone small hidden group would be that score minus the shown ones, so `complement` hides the smallest shown
   groups beside it until the hidden ones hold MIN_GROUP answers together.
3. Per-row outputs (exports, `GET /api/v1/responses`, a contact's history) leave such answers out: a row is a
   group of one, and its id and time place it beside the invitation that went to one person. What the person
   texted back to such an invitation is their answer too (`anonymous_invitations`).

Which campaigns are anonymous is read from their stored definitions once per query (there are few campaigns);
with none, every helper here returns at once and queries stay exactly as they were.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, case, func, literal_column, or_, select
from sqlalchemy.orm import Session

from campaigns.scores.nps import Tally
from storage.tables import Campaign, Invitation, Response

if TYPE_CHECKING:
    from campaigns.scores.filters import Scope
    from campaigns.scores.periods import Period

Key = TypeVar("Key")

MIN_GROUP = 5
HIDDEN_NOTE = f"fewer than {MIN_GROUP} answers — hidden to keep eNPS anonymous"
WITHHELD = "(part of an answer to an anonymous campaign: never shown)"  # a text the person exchanged about it
ANONYMOUS_LABEL = "anonymous"  # who an anonymous answer is from, wherever a name would be

ANONYMOUS_KEY = "anonymous"  # a group's anonymous answers, counted in a Counter beside its categories
_SESSION_KEY = "campaigns.scores.anonymity"


def must_hide(answers: int, anonymous: int, anonymous_people: int | None = None) -> bool:
    """Whether a group of `answers`, `anonymous` of them from anonymous campaigns (given by `anonymous_people`
    different people, when counted), must be hidden."""
    return anonymous > 0 and group_size(answers, anonymous, anonymous_people) < MIN_GROUP


def group_size(answers: int, anonymous: int, anonymous_people: int | None = None) -> int:
    """How many a group counts for the rule: its answers, those of one person to anonymous campaigns once."""
    return answers if anonymous_people is None else answers - anonymous + min(anonymous_people, anonymous)


def complement(sizes: Sequence[int], hidden: Sequence[bool]) -> list[bool]:
    """Which groups of one table to hide (`sizes`: their `group_size`, `hidden`: what the rule hid): those
    hidden, and, while the hidden ones hold 1 to 4 together, the smallest shown group with answers."""
    hide = list(hidden)
    together = sum(size for size, hidden_now in zip(sizes, hide, strict=True) if hidden_now)
    for index in sorted((i for i, size in enumerate(sizes) if size and not hide[i]), key=lambda i: sizes[i]):
        if not 0 < together < MIN_GROUP:
            break
        hide[index], together = True, together + sizes[index]
    return hide


def day_of(moment: datetime) -> datetime:
    """An anonymous answer's time as shown: midnight UTC of its day (the hour could tell who answered)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def anonymous_campaign_ids(session: Session) -> list[int]:
    """Ids of the campaigns whose stored definition says `anonymous: true` (read once per session)."""
    if _SESSION_KEY not in session.info:
        rows = session.execute(select(Campaign.id, Campaign.definition)).all()
        session.info[_SESSION_KEY] = sorted(
            int(campaign_id) for campaign_id, data in rows if (data or {}).get("anonymous") is True
        )
    ids: list[int] = session.info[_SESSION_KEY]
    return ids


def is_anonymous(session: Session, column: Any = Response.campaign_id) -> ColumnElement[bool] | None:
    """SQL: the answer (by its campaign id column) is from an anonymous campaign; None when none is."""
    ids = anonymous_campaign_ids(session)
    return column.in_(ids) if ids else None


def flag_column(session: Session, column: Any = Response.campaign_id) -> ColumnElement[int] | None:
    """SQL 1 or 0: the answer is an anonymous campaign's, a column to group by; None when no campaign is."""
    condition = is_anonymous(session, column)
    return None if condition is None else case((condition, 1), else_=0)


def anonymous_invitations(session: Session, invitation_ids: Iterable[int | None]) -> set[int]:
    """Those of the invitations that belong to anonymous campaigns: what a person texted back to them (a
    score, a comment) is their answer, never shown beside them either."""
    ids = anonymous_campaign_ids(session)
    wanted = {i for i in invitation_ids if i is not None}
    if not ids or not wanted:
        return set()
    found = session.scalars(
        select(Invitation.id).where(Invitation.id.in_(sorted(wanted)), Invitation.campaign_id.in_(ids))
    )
    return set(found)


def not_anonymous(session: Session, column: Any = Response.campaign_id) -> list[ColumnElement[bool]]:
    """Conditions keeping only answers of campaigns that are not anonymous (none when no campaign is)."""
    ids = anonymous_campaign_ids(session)
    return [or_(column.is_(None), column.not_in(ids))] if ids else []


def anonymous_answers(session: Session, column: Any = Response.campaign_id) -> ColumnElement[Any]:
    """SQL: how many answers of a group are anonymous, a column for a GROUP BY (0 when no campaign is)."""
    condition = is_anonymous(session, column)
    if condition is None:
        return literal_column("0")
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def count_anonymous(session: Session, conditions: list[ColumnElement[bool]]) -> int:
    """How many of the answers the conditions select are anonymous campaigns' (no query when none is)."""
    condition = is_anonymous(session)
    if condition is None:
        return 0
    return int(session.scalar(select(func.count()).select_from(Response).where(*conditions, condition)) or 0)


def anonymous_people(session: Session, conditions: list[ColumnElement[bool]]) -> tuple[int, int]:
    """How many of the answers the conditions select are anonymous campaigns', and from how many people (an
    answer whose contact was erased is one person of its own)."""
    condition = is_anonymous(session)
    if condition is None:
        return 0, 0
    erased = func.count(case((Response.contact_id.is_(None), 1)))
    answers, people, nobody = session.execute(
        select(func.count(), func.count(Response.contact_id.distinct()), erased).where(*conditions, condition)
    ).one()
    return int(answers or 0), int(people or 0) + int(nobody or 0)


def people_per_group(
    session: Session,
    scope: Scope,
    period: Period,
    expr: ColumnElement[Any],
    groups: Mapping[Key, Counter[str]],
    key: Callable[[Any], Key],
    where: Sequence[ColumnElement[bool]] = (),
) -> dict[Key, int]:
    """Per group (a segment's folded value, a bucket's index: `key` of `expr`) holding anonymous answers
    (counted under ANONYMOUS_KEY), how many people those answers are from: a value only one employee has (a
    badge), or a month of a weekly pulse under such a filter, is one person however often they answered. One
    read of the distinct (group, person) pairs of the anonymous answers, only when such a group exists."""
    flag = is_anonymous(session)
    wanted = {group for group, counter in groups.items() if counter[ANONYMOUS_KEY]}
    if flag is None or not wanted:
        return {}
    person = func.coalesce(Response.contact_id, -Response.id)  # an erased contact's answer: its own person
    found: dict[Key, set[int]] = {}
    conditions = [*scope.responses(period), *where, flag]
    for value, who in session.execute(select(expr, person).where(*conditions).distinct()):
        found.setdefault(key(value), set()).add(int(who))
    return {group: len(found.get(group, ())) for group in wanted}


def shown_tally(tally: Tally, anonymous: int, anonymous_people: int | None = None) -> tuple[Tally, bool]:
    """A group's tally as every output shows it, and whether the rule hid it (its tally is then empty)."""
    if must_hide(tally.responses, anonymous, anonymous_people):
        return Tally(), True
    return tally, False


def shown_group(session: Session, conditions: list[ColumnElement[bool]], tally: Tally) -> tuple[Tally, bool]:
    """`shown_tally` for the answers the conditions select, their anonymous ones counted once per person (one
    more query, none when no campaign is anonymous): a filter can narrow the group to one person."""
    if not tally.responses or is_anonymous(session) is None:
        return tally, False
    return shown_tally(tally, *anonymous_people(session, conditions))
