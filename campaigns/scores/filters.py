"""Filters on responses and invitations: by campaign, channel and contact properties, combined with AND.

`Filters` is the plain value (what `/nps`, App Home or a command line asks for); `Scope` resolves it against the
database once per query: the campaign's id, then SQL conditions per period. Property filters compare values the
way campaign audiences do (stripped, `casefold`), in Python, which behaves the same on SQLite and PostgreSQL
(SQLite's lower() folds ASCII only, and neither engine's lower() is casefold: "Straße" is "strasse"):

- counts (`Scope.count_responses`: score, trend, compare) group by the stored values in the one query and keep
  the groups that match, one read of the period;
- row queries (comments, exports) read the distinct stored values first and put the matching ones back into the
  query as an IN list.

Response filters use the contact's properties as they were when they answered (the snapshot).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from campaigns.scores.errors import QueryError, UnknownCampaign
from campaigns.scores.nps import Category
from campaigns.scores.periods import Period
from storage.enums import Channel
from storage.tables import Campaign, Contact, Invitation, Response


@dataclass(frozen=True)
class Filters:
    campaign: str | None = None
    channel: Channel | None = None
    properties: tuple[tuple[str, str], ...] = ()


NO_FILTERS = Filters()


def fold(value: object) -> str:
    """Comparable text of a property value, as campaign audiences compare them; "" when missing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().casefold()


def check_key(key: str) -> str:
    # SQLite builds a JSON path '$."key"' from the name; a double quote in it would break the path.
    if not key or '"' in key:
        raise QueryError(f"`{key}` cannot be a property name")
    return key


def property_text(session: Session, column: Any, key: str) -> ColumnElement[Any]:
    """The value at `key` of a JSON properties column. SQLite keeps keys as JSON text, escaped ("région" is
    stored "r\\u00e9gion" by the JSON serialiser) and its paths compare that raw text: a key outside ASCII is
    looked up as stored. PostgreSQL's JSONB compares decoded keys."""
    check_key(key)
    if key.isascii() or session.get_bind().dialect.name != "sqlite":
        return column[key].as_string()
    return func.json_extract(column, f"$.{json.dumps(key)}")


@dataclass
class Scope:
    """Filters resolved against the database: the campaign id once, property values per period."""

    session: Session
    filters: Filters
    campaign_id: int | None = None
    _values: dict[tuple[Any, ...], list[list[Any]]] = field(default_factory=dict)

    @classmethod
    def resolve(cls, session: Session, filters: Filters) -> Scope:
        scope = cls(session, filters)
        if filters.campaign is not None:
            scope.campaign_id = _campaign_id(session, filters.campaign)
        return scope

    def responses(self, period: Period) -> list[ColumnElement[bool]]:
        """Conditions on Response for the period and filters; properties are the snapshot at answer time."""
        conditions = self._responses_but_properties(period)
        if self.filters.properties:
            exprs = self._snapshot_exprs()
            conditions += self._matching(exprs, select(*exprs).where(*conditions), ("responses", period))
        return conditions

    def count_responses(
        self,
        period: Period,
        *columns: ColumnElement[Any] | InstrumentedAttribute[Any],
        where: Sequence[ColumnElement[bool]] = (),
    ) -> Counter[tuple[Any, ...]]:
        """Responses in the period under the filters (and `where`), counted per value of `columns`.

        One GROUP BY: with property filters the snapshot values join the grouping and the groups whose values
        match are kept here, so the period is read once (a DISTINCT read of the values first doubled the cost).
        """
        exprs = self._snapshot_exprs()
        grouping = [*columns, *exprs]
        stmt = select(*grouping, func.count()).where(*self._responses_but_properties(period), *where)
        counts: Counter[tuple[Any, ...]] = Counter()
        for row in self.session.execute(stmt.group_by(*grouping)):
            keys, values = tuple(row[: len(columns)]), row[len(columns) : -1]
            if self._match(values):
                counts[keys] += int(row[-1])
        return counts

    def _snapshot_exprs(self) -> list[ColumnElement[Any]]:
        return [
            property_text(self.session, Response.contact_snapshot, key) for key, _ in self.filters.properties
        ]

    def _match(self, stored: Sequence[Any]) -> bool:
        """Whether stored values (one per property filter, in order) match the filters' values."""
        return all(
            value is not None and fold(value) == fold(wanted)
            for value, (_, wanted) in zip(stored, self.filters.properties, strict=True)
        )

    def _responses_but_properties(self, period: Period) -> list[ColumnElement[bool]]:
        conditions = [
            # Naming every category lets SQLite answer from the (category, answered_at) index alone,
            # 20x faster than reading each row found through the answered_at index.
            Response.category.in_([category.value for category in Category]),
            Response.answered_at >= period.start,
            Response.answered_at < period.end,
            Response.test.is_(False),  # `nps campaigns test` answers never count
        ]
        if self.campaign_id is not None:
            conditions.append(Response.campaign_id == self.campaign_id)
        if self.filters.channel is not None:
            conditions.append(Response.channel == self.filters.channel)
        return conditions

    def invitations(self, period: Period, *, planned: bool = False) -> list[ColumnElement[bool]]:
        """Conditions on Invitation for invitations sent (or, with `planned`, due) in the period under the filters.

        Invitations keep no snapshot, so property filters use the contact's current properties.
        """
        moment = Invitation.due_at if planned else Invitation.sent_at
        conditions = [
            moment >= period.start,
            moment < period.end,
            Invitation.contact_id.not_in(select(Contact.id).where(Contact.test.is_(True))),
        ]
        if self.campaign_id is not None:
            conditions.append(Invitation.campaign_id == self.campaign_id)
        if self.filters.channel is not None:
            conditions.append(Invitation.channel == self.filters.channel)
        if self.filters.properties:
            exprs = [
                property_text(self.session, Contact.properties, key) for key, _ in self.filters.properties
            ]
            matching = self._matching(exprs, select(*exprs), ("contacts",))
            conditions.append(Invitation.contact_id.in_(select(Contact.id).where(*matching)))
        return conditions

    def _matching(
        self, exprs: list[ColumnElement[Any]], candidates: Select[Any], cache_key: tuple[Any, ...]
    ) -> list[ColumnElement[bool]]:
        """`expr IN (stored values that match)` per property filter, from one DISTINCT read of the values."""
        if cache_key not in self._values:
            wanted = [fold(value) for _, value in self.filters.properties]
            found: list[set[Any]] = [set() for _ in wanted]
            for row in self.session.execute(candidates.distinct()):
                for index, stored in enumerate(row):
                    if stored is not None and fold(stored) == wanted[index]:
                        found[index].add(stored)
            self._values[cache_key] = [sorted(values, key=str) for values in found]
        return [expr.in_(values) for expr, values in zip(exprs, self._values[cache_key], strict=True)]


def _campaign_id(session: Session, name: str) -> int:
    rows = session.execute(select(Campaign.id, Campaign.name)).all()
    for wanted in (lambda n: n == name, lambda n: n.casefold() == name.strip().casefold()):
        for campaign_id, campaign_name in rows:
            if wanted(campaign_name):
                return int(campaign_id)
    raise UnknownCampaign(name, sorted(campaign_name for _, campaign_name in rows))
