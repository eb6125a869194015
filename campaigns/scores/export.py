"""Responses out to a file, for a spreadsheet or a script: `nps export responses FILE.csv|.jsonl`.

Rows stream from the database to the file in pages (`yield_per`), so memory stays flat however many responses
there are. A CSV has one column per property found in the responses' snapshots (a first pass reads only the
snapshots, also streamed); text cells a spreadsheet would run as a formula are neutralised (OWASP's rule: a
leading apostrophe before = + - @, a tab or a carriage return, also after leading blanks, which spreadsheets
skip, and for the full-width signs and the DDE pipe). JSON Lines keeps every value as stored.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.scores.anonymity import count_anonymous, not_anonymous
from campaigns.scores.filters import Filters, Scope
from campaigns.scores.periods import Period
from storage.tables import Campaign, Contact, Response

Format = Literal["csv", "jsonl"]
PAGE = 1_000
FORMULA_STARTS = ("=", "+", "-", "@", "|", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\t", "\r")
LEADING_BLANKS = re.compile(r"^[\s\ufeff\u200b-\u200d\u2060]+")  # blanks and invisibles a spreadsheet skips
PROPERTY_PREFIX = "property:"
COLUMNS = (
    "response_id",
    "answered_at",
    "score",
    "category",
    "comment",
    "channel",
    "campaign",
    "contact",
    "late",
)


def neutralise(cell: str) -> str:
    """A text cell as a spreadsheet shows it, never runs it."""
    runs = cell.startswith(FORMULA_STARTS) or LEADING_BLANKS.sub("", cell).startswith(FORMULA_STARTS)
    return "'" + cell if runs else cell


ALL_TIME = Period(datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC), label="all time")


def _conditions(session: Session, filters: Filters, period: Period | None) -> list[Any]:
    # eNPS: a row is a group of one, so answers of anonymous campaigns are never exported row by row.
    return [*Scope.resolve(session, filters).responses(period or ALL_TIME), *not_anonymous(session)]


def left_out(session: Session, filters: Filters, period: Period | None) -> int:
    """How many answers the filters select that exports leave out because their campaign is anonymous."""
    return count_anonymous(session, Scope.resolve(session, filters).responses(period or ALL_TIME))


def _rows(session: Session, conditions: list[Any], *, by_id: bool = False) -> Iterator[dict[str, Any]]:
    query = (
        select(Response, Campaign.name, Contact.external_id)
        .outerjoin(Campaign, Campaign.id == Response.campaign_id)
        .outerjoin(Contact, Contact.id == Response.contact_id)
        .where(*conditions)
        .order_by(*((Response.id,) if by_id else (Response.answered_at, Response.id)))
        .execution_options(yield_per=PAGE)
    )
    for response, campaign, contact in session.execute(query):
        yield {
            "response_id": response.id,
            "answered_at": response.answered_at.isoformat(),
            "score": response.score,
            "category": response.category.value,
            "comment": response.comment,
            "channel": response.channel.value,
            "campaign": campaign,
            "contact": contact,
            "late": response.late,
            "properties": response.contact_snapshot or {},
        }
        session.expunge(response)  # keep the identity map from growing with the export


def property_keys(session: Session, conditions: list[Any]) -> list[str]:
    """Every property name in the snapshots of the responses the conditions select, sorted (streamed)."""
    keys: set[str] = set()
    query = select(Response.contact_snapshot).where(*conditions).execution_options(yield_per=PAGE)
    for (snapshot,) in session.execute(query):
        keys.update(str(key) for key in snapshot or {})
    return sorted(keys)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    return neutralise(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def export_responses(
    file: TextIO, fmt: Format, *, session: Session, filters: Filters, period: Period | None
) -> int:
    """Write the responses the filters select (all time when `period` is None), oldest first; how many."""
    conditions = _conditions(session, filters, period)
    count = 0
    if fmt == "jsonl":
        for row in _rows(session, conditions):
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        return count
    keys = property_keys(session, conditions)
    writer = csv.writer(file)
    writer.writerow([*COLUMNS, *(PROPERTY_PREFIX + key for key in keys)])
    for row in _rows(session, conditions):
        properties = row["properties"]
        writer.writerow(
            [_csv_cell(row[column]) for column in COLUMNS] + [_csv_cell(properties.get(key)) for key in keys]
        )
        count += 1
    return count


def response_page(
    *, session: Session, filters: Filters, period: Period | None, after: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of `GET /api/v1/responses`: up to `limit` responses with an id above `after`, in id order, and
    the id to continue after (None on the last page). Keyset pagination: a page never skips or repeats a
    response because others arrived meanwhile."""
    conditions = [*_conditions(session, filters, period), Response.id > after]
    rows = list(itertools.islice(_rows(session, conditions, by_id=True), limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["response_id"] if more else None)
