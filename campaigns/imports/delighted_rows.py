"""Reading one row of a Delighted responses export: pure, no I/O.

Delighted (shut down on 2026-06-30) let customers download their responses as CSV. Column names vary a little
between its exports and their ages, so each field is found under any of its known names, case and spacing aside
(`HEADERS`). Every other column is a person property as it was when they answered (Delighted's "person
properties", one column each). A row that cannot be read gives a reason, never a half-read response.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

HEADERS: dict[str, tuple[str, ...]] = {
    "response_id": ("response id", "response_id", "id"),
    "answered_at": ("date", "created at", "created_at", "responded at", "response date", "time"),
    "score": ("score", "nps score", "rating"),
    "comment": ("comment", "comments", "feedback"),
    "name": ("name", "person name", "full name"),
    "email": ("email", "person email", "email address"),
    "phone": ("phone", "phone number", "person phone number", "phone_number"),
    "tags": ("tags", "tag"),
    "notes": ("notes", "note"),
    "permalink": ("permalink", "response permalink"),
    "survey_type": ("survey type", "survey_type"),
    "channel": ("channel", "source", "delighted source"),
}
"""Our field -> the Delighted column names it is read from (compared case-insensitively, spaces squeezed)."""

TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S %Z",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %H:%M",
)
_SPACES = re.compile(r"[\s_]+")


def header_key(column: str) -> str:
    return _SPACES.sub(" ", column.strip().casefold().lstrip("\ufeff"))


def column_map(header: list[str]) -> dict[str, str]:
    """Column name as written -> our field, or "property:<name>" for the others. The first match wins."""
    known = {name: ours for ours, names in HEADERS.items() for name in names}
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for column in header:
        ours = known.get(header_key(column))
        if ours is not None and ours not in taken:
            mapping[column] = ours
            taken.add(ours)
        elif column.strip():  # lower-cased, as the contacts import stores its columns' names
            mapping[column] = "property:" + column.strip().casefold()
    return mapping


@dataclass(frozen=True)
class DelightedResponse:
    key: str  # "delighted:<response id>", else "delighted:<person>|<time>|<score>"; a SHA-256 digest past 160 chars
    answered_at: datetime
    score: int
    comment: str | None
    name: str | None
    email: str | None
    phone: str | None
    channel: str | None
    properties: dict[str, str] = field(default_factory=dict)
    kept: dict[str, Any] = field(default_factory=dict)  # tags, notes, permalink


class RowError(ValueError):
    """Why a row was not imported; the message names the column."""


def parse_time(text: str) -> datetime:
    """Delighted's forms: ISO 8601, "2024-04-18 05:34:20 UTC" / "+0000", or a Unix timestamp; UTC unless stated."""
    value = text.strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", value):
        return datetime.fromtimestamp(float(value), tz=UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        for fmt in TIME_FORMATS:
            try:
                moment = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
        else:
            raise RowError(
                f"the date {value!r} is not a time Delighted wrote (2024-04-18 05:34:20 UTC)"
            ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _score(text: str) -> int:
    value = text.strip()
    if not re.fullmatch(r"\d{1,2}(\.0+)?", value) or not 0 <= int(float(value)) <= 10:
        raise RowError(f"the score {value!r} is not a whole number from 0 to 10")
    return int(float(value))


KEY_LENGTH = 160  # responses.source_key


def _fitted(key: str) -> str:
    """The key as stored; a longer one (a long address, a long id) as its digest, never cut: two answers of
    one person differ only at the end of theirs."""
    if len(key) <= KEY_LENGTH:
        return key
    return "delighted:sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def read_row(row: dict[str, str], mapping: dict[str, str]) -> DelightedResponse | None:
    """One response, None for a row of another survey type (CSAT, CES...), RowError for one that cannot be read."""
    fields: dict[str, str] = {}
    properties: dict[str, str] = {}
    for column, ours in mapping.items():
        cell = (row.get(column) or "").strip()
        if "\x00" in cell or (cell and "\x00" in column):  # PostgreSQL stores no NUL in text or JSON
            raise RowError(f"the {column.strip()!r} column holds a NUL character (a damaged export?)")
        if ours.startswith("property:"):
            if cell:
                properties[ours.removeprefix("property:")] = cell
        else:
            fields[ours] = cell
    if fields.get("survey_type", "").casefold() not in ("", "nps", "enps"):
        return None
    if not fields.get("score"):
        raise RowError("the score is empty")
    if not fields.get("answered_at"):
        raise RowError("the date is empty")
    score, answered_at = _score(fields["score"]), parse_time(fields["answered_at"])
    email = fields.get("email") or None
    phone = fields.get("phone") or None
    if fields.get("response_id"):
        key = f"delighted:{fields['response_id']}"
    else:
        key = f"delighted:{(email or phone or '').casefold()}|{answered_at.isoformat()}|{score}"
    tags = [tag.strip() for tag in fields.get("tags", "").split(",") if tag.strip()]
    kept = {"tags": tags, "notes": fields.get("notes") or None, "permalink": fields.get("permalink") or None}
    return DelightedResponse(
        key=_fitted(key),
        answered_at=answered_at,
        score=score,
        comment=fields.get("comment") or None,
        name=fields.get("name") or None,
        email=email,
        phone=phone,
        channel=(fields.get("channel") or "").casefold() or None,
        properties=properties,
        kept={name: value for name, value in kept.items() if value},
    )
