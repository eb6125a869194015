"""Send windows: the weekdays and local hours in which a recipient may be messaged.

A window is judged on the recipient's wall clock, so "Monday to Thursday, 09:00-12:00" means 09:00 in Kolkata
for a contact there and 09:00 in Los Angeles for one there. Daylight-saving changes make wall time jump: a
spring-forward gap skips an hour (or 30 minutes on Lord Howe Island) and a fall-back repeats one. The functions
here never do arithmetic on wall times across such a jump; they walk UTC in stretches of constant offset, in
which wall-clock arithmetic is exact. Consequences, all following from "inside means the wall clock reads a time
in [start, end) on an allowed weekday":

- a window opening in a gap (02:00-04:00 on a day that jumps 02:00 -> 03:00) opens at the first instant after
  the gap (03:00); a window lying wholly in the gap does not open that day;
- on a fall-back day an ambiguous opening time is taken at its first occurrence, and a window spanning the
  repeated hour stays open through both passes of it (02:00-03:00 in Berlin is open for two hours that day).

Windows may not cross midnight (`end` > `start`); a late-night window is two windows' worth of days.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Monday to Thursday, 09:00-12:00 local: the product's default, when surveys are most often answered.
DEFAULT_DAYS = frozenset({0, 1, 2, 3})
DEFAULT_START = time(9)
DEFAULT_END = time(12)

# How often the UTC offset is sampled when looking for a change. The two closest transitions in the whole tz
# database are four days apart (Africa/Freetown, 1939), so a change and its undoing never both fall between two
# samples; sampling more often would only cost time.
_PROBE = timedelta(hours=12)
_RESOLUTION = timedelta(microseconds=1)
# Each stretch of constant offset ends in a transition or an answer; a week holds at most a couple of
# transitions, so this bound is only reached by a zone whose every allowed day lies in a gap.
_MAX_STRETCHES = 64


class WindowLike(Protocol):
    """Anything with the fields of a send window (`campaigns.definitions.model.SendWindow` among them)."""

    @property
    def days(self) -> Set[int]:
        """Allowed weekdays, 0 = Monday ... 6 = Sunday."""
        ...

    @property
    def start(self) -> time:
        """Opening wall-clock time, inclusive."""
        ...

    @property
    def end(self) -> time:
        """Closing wall-clock time, exclusive."""
        ...


def check_window(window: WindowLike) -> None:
    """ValueError unless the window opens at least once a week; the search functions rely on that to end."""
    if not window.days or not set(window.days) <= set(range(7)):
        raise ValueError(
            f"a send window needs weekdays from 0 (Monday) to 6 (Sunday), got {set(window.days)}"
        )
    if window.start.tzinfo is not None or window.end.tzinfo is not None:
        raise ValueError("send window times are local wall-clock times and must not carry a time zone")
    if not window.start < window.end:
        raise ValueError(f"a send window must end after it starts, got {window.start}-{window.end}")


def is_inside(window: WindowLike, zone: ZoneInfo, at: datetime) -> bool:
    """Whether the recipient's wall clock reads a time in [start, end) on an allowed weekday at `at`."""
    return _wall_inside(window, _wall(_require_aware(at), zone))


def next_send_time(window: WindowLike, zone: ZoneInfo, earliest: datetime) -> datetime:
    """The first instant at or after `earliest` that is inside the window (UTC; `earliest` itself if inside)."""
    check_window(window)
    if is_inside(window, zone, earliest):
        return earliest
    moment = earliest.astimezone(UTC)
    for _ in range(_MAX_STRETCHES):
        wall = _wall(moment, zone)
        # Correct as long as the offset holds from `moment` to `candidate`; otherwise retry from the change.
        candidate = moment + (_next_inside_wall(window, wall) - wall)
        change = _first_offset_change(zone, moment, candidate)
        if change is None:
            return candidate
        moment = change
    raise RuntimeError(f"no opening of {_describe(window)} found in {zone.key} after {earliest.isoformat()}")


def window_end(window: WindowLike, zone: ZoneInfo, at: datetime) -> datetime:
    """The UTC instant the window open at `at` closes: a send must not start at or after it.

    ValueError when the window is not open at `at`. It closes when the wall clock first leaves [start, end):
    by reaching `end`, by a spring-forward jump past `end` or by a fall-back jump to before `start`.
    """
    check_window(window)
    if not is_inside(window, zone, at):
        raise ValueError(f"{_describe(window)} is not open in {zone.key} at {at.isoformat()}")
    moment = at.astimezone(UTC)
    for _ in range(_MAX_STRETCHES):
        wall = _wall(moment, zone)
        closing = moment + (datetime.combine(wall.date(), window.end) - wall)
        change = _first_offset_change(zone, moment, closing)
        if change is None:
            return closing
        if not is_inside(window, zone, change):
            return change
        moment = change
    raise RuntimeError(f"{_describe(window)} in {zone.key} never closes after {at.isoformat()}")


def zone_for(contact_timezone: str | None, campaign_timezone: str | None, default: str) -> ZoneInfo:
    """The first usable zone of contact, campaign and default, else UTC.

    Never raises for a bad name: a stored name can stop resolving (a tzdata update, a hand-edited row), and one
    contact's bad zone must not stop a whole campaign from being planned.
    """
    for name in (contact_timezone, campaign_timezone, default):
        zone = _load_zone(name) if name else None
        if zone is not None:
            return zone
    return ZoneInfo("UTC")


def own_zone(name: str | None) -> ZoneInfo | None:
    """The zone of that name when it resolves, else None (a contact's own zone, with no fallback)."""
    return _load_zone(name) if name else None


# --- helpers -------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _load_zone(name: str) -> ZoneInfo | None:
    # Cached because a missing name is looked up on disk again on every call, once per contact.
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r} given; use an aware UTC datetime")
    return at


def _wall(at: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock reading in `zone` at the instant `at`."""
    return at.astimezone(zone).replace(tzinfo=None)


def _offset(at: datetime, zone: ZoneInfo) -> timedelta | None:
    return at.astimezone(zone).utcoffset()


def _wall_inside(window: WindowLike, wall: datetime) -> bool:
    return wall.weekday() in window.days and window.start <= wall.time() < window.end


def _next_inside_wall(window: WindowLike, wall: datetime) -> datetime:
    """The first wall-clock reading at or after `wall` inside the window, as if the clocks never changed."""
    if _wall_inside(window, wall):
        return wall
    # Eight days: the same weekday comes round again on the eighth, so every allowed day has been seen.
    for days_ahead in range(8):
        day = wall.date() + timedelta(days=days_ahead)
        opening = datetime.combine(day, window.start)
        if day.weekday() in window.days and opening >= wall:
            return opening
    raise AssertionError(f"unreachable for a checked window: {_describe(window)}")


def _first_offset_change(zone: ZoneInfo, low: datetime, high: datetime) -> datetime | None:
    """The first instant in (low, high] whose UTC offset differs from the one at `low`, if any."""
    offset = _offset(low, zone)
    before = low
    while before < high:
        after = min(before + _PROBE, high)
        if _offset(after, zone) != offset:
            return _bisect_change(zone, before, after, offset)
        before = after
    return None


def _bisect_change(zone: ZoneInfo, same: datetime, changed: datetime, offset: timedelta | None) -> datetime:
    """Narrow to the exact instant (to the microsecond) the offset stops being `offset`."""
    while changed - same > _RESOLUTION:
        middle = same + (changed - same) / 2
        if _offset(middle, zone) == offset:
            same = middle
        else:
            changed = middle
    return changed


def _describe(window: WindowLike) -> str:
    days = ",".join(str(day) for day in sorted(window.days))
    return f"window days={days} {window.start.isoformat()}-{window.end.isoformat()}"
