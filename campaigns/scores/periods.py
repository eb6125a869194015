"""Reporting periods: a [start, end) span in UTC, and the calendar arithmetic that builds and steps them.

Pure: the caller passes `now` and the reporting time zone. A period keeps its zone and its calendar length
(months or days), so that the period before a quarter is the whole quarter before it, across DST. Each period
also carries `source`, its canonical text (`last 30d`, `this quarter`, `2026-01-01..2026-03-31`), so that an
answer can say how to ask for the same period again. Arguments are checked by whoever reads them from text
(the `/nps` grammar); these constructors take valid values.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

Granularity = Literal["weekly", "monthly"]
CalendarUnit = Literal["week", "month", "quarter", "year"]
RollingUnit = Literal["d", "w", "m", "q", "y"]

MONTHS_PER_UNIT: dict[CalendarUnit, int] = {"week": 0, "month": 1, "quarter": 3, "year": 12}  # a week: 7 days
UNIT_NAMES: dict[RollingUnit, str] = {"d": "day", "w": "week", "m": "month", "q": "quarter", "y": "year"}


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC.

    previous() steps back by `months` calendar months or `days` calendar days in `tz` when either is set (so a
    quarter is preceded by the whole quarter before, across DST), else by the exact length.
    """

    start: datetime
    end: datetime
    label: str = field(default="", compare=False)
    source: str = field(default="", compare=False)  # text that gives it again ("" = the default)
    months: int = field(default=0, compare=False)
    days: int = field(default=0, compare=False)
    tz: tzinfo = field(default=UTC, compare=False)

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        if self.months:
            start = add_months(self.start, -self.months, self.tz)
        elif self.days:
            start = (self.start.astimezone(self.tz) - timedelta(days=self.days)).astimezone(UTC)
        else:
            start = self.start - (self.end - self.start)
        label = f"the period before {self.label}" if self.label else "the period before"
        return Period(start, self.start, label, "", self.months, self.days, self.tz)

    def local_dates(self) -> tuple[date, date]:
        """First and last local day covered (the end is exclusive, so the last day is the one before it)."""
        last = (self.end - timedelta(microseconds=1)) if self.end > self.start else self.end
        return self.start.astimezone(self.tz).date(), last.astimezone(self.tz).date()


def add_months(moment: datetime, months: int, tz: tzinfo) -> datetime:
    """`moment` moved by whole calendar months in `tz` (day clamped to the month's length), in UTC."""
    local = moment.astimezone(tz)
    index = local.year * 12 + local.month - 1 + months
    year, month = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day).astimezone(UTC)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def unit_start(today: date, unit: CalendarUnit) -> date:
    """The first day of the week (Monday), month, quarter or year that holds `today`."""
    if unit == "week":
        return today - timedelta(days=today.weekday())
    if unit == "month":
        return today.replace(day=1)
    if unit == "quarter":
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    return today.replace(month=1, day=1)


def calendar_period(
    which: Literal["this", "last"], unit: CalendarUnit, *, now: datetime, tz: tzinfo
) -> Period:
    """`this week` (to date: it ends at `now`) or `last week` (the whole one before), and so on per unit."""
    now = now.astimezone(UTC)
    start_day = unit_start(now.astimezone(tz).date(), unit)
    months = MONTHS_PER_UNIT[unit]
    days = 0 if months else 7
    start = local_midnight(start_day, tz)
    this = Period(start, start, f"this {unit}", f"this {unit}", months, days, tz)
    if which == "last":
        return replace(this.previous(), label=f"last {unit}", source=f"last {unit}")
    unit_end = add_months(start, months, tz) if months else local_midnight(start_day + timedelta(7), tz)
    # To date: the current unit ends now, and previous() is the whole unit before it.
    return replace(this, end=min(unit_end, now))


def rolling_period(count: int, unit: RollingUnit, *, now: datetime, tz: tzinfo) -> Period:
    """The `count` days, weeks, months, quarters or years up to `now` (`last 30d`, `last 6m`)."""
    now = now.astimezone(UTC)
    label = f"last {count} {UNIT_NAMES[unit]}{'s' if count > 1 else ''}"
    source = f"last {count}{unit}"
    if unit in ("d", "w"):
        length = timedelta(days=count * (7 if unit == "w" else 1))
        return Period(now - length, now, label, source, 0, 0, tz)
    months = count * {"m": 1, "q": 3, "y": 12}[unit]
    return Period(add_months(now, -months, tz), now, label, source, months, 0, tz)


def date_range(first: date, last: date, tz: tzinfo) -> Period:
    """The local days `first` to `last`, both included (`first` <= `last`)."""
    spelled = first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
    start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    days = (last - first).days + 1
    return Period(start, end, spelled.replace("..", " to "), spelled, 0, days, tz)


def whole_buckets(granularity: Granularity, count: int, *, now: datetime, tz: tzinfo) -> Period:
    """`count` whole weeks (from Monday) or months ending with the current one, which runs to `now`."""
    now = now.astimezone(UTC)
    today = now.astimezone(tz).date()
    if granularity == "weekly":
        start = local_midnight(unit_start(today, "week") - timedelta(weeks=count - 1), tz)
        return Period(start, now, f"last {count} weeks", "", 0, 7 * count, tz)
    start = add_months(local_midnight(unit_start(today, "month"), tz), -(count - 1), tz)
    return Period(start, now, f"last {count} months", "", count, 0, tz)
