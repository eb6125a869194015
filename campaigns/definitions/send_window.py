"""The ``send_window`` of a campaign file: weekdays by name, range or group, and local start and end times."""

from __future__ import annotations

import re
from datetime import time

from campaigns.definitions.fields import as_text
from campaigns.definitions.model import DEFAULT_DAYS, DEFAULT_END, DEFAULT_START, SendWindow
from campaigns.definitions.problems import Reject, Section, describe, quote

__all__ = ["read_send_window"]


_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_ALIASES = {"tues": 1, "weds": 2, "thur": 3, "thurs": 3}
_DAY_OF = {
    **{name: day for day, name in enumerate(_DAY_NAMES)},
    **{name[:3]: day for day, name in enumerate(_DAY_NAMES)},
}
_DAY_OF.update(_DAY_ALIASES)
_DAY_GROUPS = {
    "weekdays": frozenset(range(5)),
    "weekday": frozenset(range(5)),
    "weekend": frozenset({5, 6}),
    "weekends": frozenset({5, 6}),
    "every day": frozenset(range(7)),
    "everyday": frozenset(range(7)),
    "daily": frozenset(range(7)),
    "all": frozenset(range(7)),
}
_DAYS_HELP = "use mon, tue, wed, thu, fri, sat, sun, a range such as mon-thu, weekdays, weekend or every day"


def read_send_window(section: Section) -> SendWindow:
    section.check_keys(("days", "start", "end"))
    days = section.read("days", _parse_days, DEFAULT_DAYS)
    start = section.read("start", _parse_time, DEFAULT_START)
    end = section.read("end", _parse_time, DEFAULT_END)
    if section.valid("start", "end") and not start < end:
        section.fail(
            "end",
            f"({end:%H:%M}) must be after start ({start:%H:%M}); a window cannot cross midnight",
        )
    if section.failed:
        return SendWindow()
    return SendWindow(days, start, end)


def _parse_days(value: object) -> frozenset[int]:
    if isinstance(value, str):
        items: list[object] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise Reject(f"must be a list of days such as [mon, tue, wed, thu], not {describe(value)}")
    days: set[int] = set()
    for item in items:
        days |= _parse_day_item(item)
    if not days:
        raise Reject(f"must name at least one day; {_DAYS_HELP}")
    return frozenset(days)


def _parse_day_item(item: object) -> frozenset[int]:
    text = " ".join(as_text(item, "a day name").lower().split())
    if text in _DAY_GROUPS:
        return _DAY_GROUPS[text]
    if "-" in text:
        first, _, last = (part.strip() for part in text.partition("-"))
        if first in _DAY_OF and last in _DAY_OF:
            start, stop = _DAY_OF[first], _DAY_OF[last]
            # "fri-mon" wraps over the weekend.
            return frozenset((start + offset) % 7 for offset in range((stop - start) % 7 + 1))
    if text in _DAY_OF:
        return frozenset({_DAY_OF[text]})
    raise Reject(f"{quote(text)} is not a day; {_DAYS_HELP}")


_TIME_RE = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def _parse_time(value: object) -> time:
    if not isinstance(value, str):
        raise Reject(f'must be a time such as "09:00" (24-hour HH:MM), not {describe(value)}')
    match = _TIME_RE.fullmatch(value.strip())
    if match is None:
        raise Reject(f'{quote(value)} is not a time; use 24-hour HH:MM such as "09:00" or "17:30"')
    return time(int(match.group(1)), int(match.group(2)))
