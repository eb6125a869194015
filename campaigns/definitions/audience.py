"""The ``audience`` of a campaign file: property filters (a list means any of) and a ``created_at`` range."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from campaigns.contacts.validation import STANDARD_FIELDS
from campaigns.definitions.fields import as_text
from campaigns.definitions.model import Audience, as_utc
from campaigns.definitions.problems import Reject, Section, describe, quote

__all__ = ["AUDIENCE_HELP", "read_audience"]


AUDIENCE_HELP = "property filters such as {plan: [pro, enterprise], region: EU}"


def read_audience(section: Section) -> Audience:
    properties: dict[str, tuple[str, ...]] = {}
    before = after = None
    for key in section.data:
        if key == "created_at":
            before, after = _read_created_at(section)
        elif isinstance(key, str) and key.strip():
            values = _read_filter(section, key)
            if values is not None:
                properties[key.strip()] = values
        else:
            section.report.problem(
                section.at(str(key)), "property names must be text; put the name in quotes"
            )
    return Audience(properties, before, after)


def _read_filter(section: Section, key: str) -> tuple[str, ...] | None:
    if key.strip().casefold() in STANDARD_FIELDS:
        section.fail(
            key,
            f"'{key}' is a contact field, not a property; audience filters apply to properties and created_at",
        )
        return None
    return section.read(key, _parse_filter_values, None, null_is_value=True)


def _parse_filter_values(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise Reject("is an empty list, which no contact matches; remove the filter or list values")
    texts = []
    for item in items:
        if item is None or isinstance(item, Mapping | list):
            raise Reject(
                f"values must be text or numbers, not {describe(item) if item is not None else 'null'}"
            )
        text = ("true" if item else "false") if isinstance(item, bool) else str(item).strip()
        if not text:
            raise Reject("contains an empty value, which no contact matches")
        texts.append(text)
    return tuple(texts)


def _read_created_at(audience: Section) -> tuple[datetime | None, datetime | None]:
    section = audience.child("created_at", "such as {before: 2026-01-01, after: 2025-01-01}")
    if section is None:
        return None, None
    section.check_keys(("before", "after"))
    before = section.read("before", _parse_moment, None)
    after = section.read("after", _parse_moment, None)
    if before is not None and after is not None and not after < before:
        audience.fail(
            "created_at", f"after ({after.isoformat()}) must be earlier than before ({before.isoformat()})"
        )
    return before, after


def _parse_moment(value: object) -> datetime:
    """A date (midnight UTC) or an ISO 8601 date-time (UTC when it has no offset)."""
    text = as_text(value, "a date such as 2026-01-01 or a date-time such as 2026-01-01T09:00:00+01:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Reject(
            f"{quote(text)} is not a date; use 2026-01-01 or an ISO date-time such as 2026-01-01T09:00:00+01:00"
        ) from None
    return as_utc(moment).astimezone(UTC)
