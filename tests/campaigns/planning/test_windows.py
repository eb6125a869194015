from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.planning.windows import (
    DEFAULT_DAYS,
    DEFAULT_END,
    DEFAULT_START,
    check_window,
    is_inside,
    next_send_time,
    window_end,
    zone_for,
)

LOS_ANGELES = ZoneInfo("America/Los_Angeles")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
BERLIN = ZoneInfo("Europe/Berlin")
EVERY_DAY = frozenset(range(7))
SUNDAY = 6


@dataclass(frozen=True)
class Window:
    """Stands in for campaigns.definitions.model.SendWindow: the functions accept anything with these fields."""

    days: frozenset[int]
    start: time
    end: time


DEFAULT = Window(DEFAULT_DAYS, DEFAULT_START, DEFAULT_END)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_the_default_window_is_monday_to_thursday_nine_to_noon() -> None:
    assert {0, 1, 2, 3} == DEFAULT_DAYS
    assert (time(9), time(12)) == (DEFAULT_START, DEFAULT_END)
    check_window(DEFAULT)


# --- is_inside ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (utc(2026, 3, 2, 16, 59), False),  # Monday 08:59 PST
        (utc(2026, 3, 2, 17, 0), True),  # Monday 09:00 PST: start is inclusive
        (utc(2026, 3, 2, 19, 59, 59), True),
        (utc(2026, 3, 2, 20, 0), False),  # Monday 12:00 PST: end is exclusive
        (utc(2026, 3, 6, 17, 30), False),  # Friday 09:30 PST
    ],
)
def test_is_inside_reads_the_recipients_wall_clock(at: datetime, inside: bool) -> None:
    assert is_inside(DEFAULT, LOS_ANGELES, at) is inside


def test_is_inside_uses_the_local_weekday_not_the_utc_one() -> None:
    # Monday 03:45 UTC is Monday 09:15 in Kolkata but still Sunday 19:45 in Los Angeles.
    at = utc(2026, 3, 2, 3, 45)
    assert is_inside(DEFAULT, KOLKATA, at)
    assert not is_inside(Window(frozenset({0}), time(19), time(20)), LOS_ANGELES, at)
    assert is_inside(Window(frozenset({SUNDAY}), time(19), time(20)), LOS_ANGELES, at)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 3, 2, 10, 0)
    with pytest.raises(ValueError, match="naive"):
        is_inside(DEFAULT, BERLIN, naive)
    with pytest.raises(ValueError, match="naive"):
        next_send_time(DEFAULT, BERLIN, naive)
    with pytest.raises(ValueError, match="naive"):
        window_end(DEFAULT, BERLIN, naive)


# --- next_send_time: ordinary days -----------------------------------------------------------------------------


def test_an_instant_inside_the_window_is_returned_unchanged() -> None:
    at = datetime(2026, 3, 2, 10, 17, 3, 500, tzinfo=timezone(timedelta(hours=1)))  # Berlin wall time
    assert next_send_time(DEFAULT, BERLIN, at) is at


def test_before_the_window_opens_it_waits_for_the_opening() -> None:
    # Monday 00:00 UTC is 05:30 in Kolkata; the window opens at 09:00 IST = 03:30 UTC.
    assert next_send_time(DEFAULT, KOLKATA, utc(2026, 3, 2, 0, 0)) == utc(2026, 3, 2, 3, 30)


def test_after_the_window_closes_it_waits_for_the_next_allowed_day() -> None:
    # Monday 12:30 in Kolkata -> Tuesday 09:00 IST.
    assert next_send_time(DEFAULT, KOLKATA, utc(2026, 3, 2, 7, 0)) == utc(2026, 3, 3, 3, 30)


@pytest.mark.parametrize(
    "earliest",
    [
        utc(2026, 3, 5, 11, 0),  # Thursday 12:00 CET, just closed
        utc(2026, 3, 6, 8, 0),  # Friday 09:00 CET
        utc(2026, 3, 8, 22, 59),  # Sunday 23:59 CET
    ],
)
def test_the_weekend_rolls_over_to_monday(earliest: datetime) -> None:
    assert next_send_time(DEFAULT, BERLIN, earliest) == utc(2026, 3, 9, 8, 0)  # Monday 09:00 CET


def test_a_roll_over_across_a_dst_change_uses_the_new_offset() -> None:
    # Thursday 13:00 PST; US clocks spring forward on Sunday 2026-03-08; Monday 09:00 PDT = 16:00 UTC.
    assert next_send_time(DEFAULT, LOS_ANGELES, utc(2026, 3, 5, 21, 0)) == utc(2026, 3, 9, 16, 0)


def test_lord_howe_half_hour_dst_shifts_the_opening_by_thirty_minutes() -> None:
    # Lord Howe is +10:30 in winter and +11:00 in summer (from Sunday 2026-10-04, 02:00 -> 02:30).
    assert next_send_time(DEFAULT, LORD_HOWE, utc(2026, 9, 27, 0, 0)) == utc(2026, 9, 27, 22, 30)
    assert next_send_time(DEFAULT, LORD_HOWE, utc(2026, 10, 4, 0, 0)) == utc(2026, 10, 4, 22, 0)


# --- next_send_time and window_end around DST changes ----------------------------------------------------------


def test_a_window_opening_in_a_spring_forward_gap_opens_when_the_gap_ends() -> None:
    # New York, Sunday 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC). 02:00-04:00 opens at 03:00 EDT.
    window = Window(frozenset({SUNDAY}), time(2), time(4))
    opening = next_send_time(window, NEW_YORK, utc(2026, 3, 7, 12, 0))
    assert opening == utc(2026, 3, 8, 7, 0)
    assert opening.astimezone(NEW_YORK).time() == time(3)
    assert window_end(window, NEW_YORK, opening) == utc(2026, 3, 8, 8, 0)  # 04:00 EDT


def test_lord_howe_thirty_minute_gap() -> None:
    # 02:00 +10:30 (15:30 UTC) jumps to 02:30 +11:00: a 02:00-03:00 window opens at 02:30 local.
    window = Window(frozenset({SUNDAY}), time(2), time(3))
    opening = next_send_time(window, LORD_HOWE, utc(2026, 10, 3, 0, 0))
    assert opening == utc(2026, 10, 3, 15, 30)
    assert opening.astimezone(LORD_HOWE).time() == time(2, 30)
    assert window_end(window, LORD_HOWE, opening) == utc(2026, 10, 3, 16, 0)


def test_a_window_lying_wholly_in_the_gap_does_not_open_that_day() -> None:
    window = Window(EVERY_DAY, time(2), time(2, 30))
    # Monday 02:00 EDT: 2026-03-08 02:00-02:30 never appears on New York clocks.
    assert next_send_time(window, NEW_YORK, utc(2026, 3, 8, 0, 0)) == utc(2026, 3, 9, 6, 0)


def test_a_window_closing_in_the_gap_closes_at_the_jump() -> None:
    window = Window(EVERY_DAY, time(1), time(2, 30))
    assert window_end(window, NEW_YORK, utc(2026, 3, 8, 6, 30)) == utc(2026, 3, 8, 7, 0)


def test_fall_back_opens_at_the_first_occurrence_and_stays_open_through_the_repeat() -> None:
    # Berlin, Sunday 2026-10-25: 03:00 CEST (01:00 UTC) goes back to 02:00 CET, so 02:00-03:00 happens twice.
    window = Window(frozenset({SUNDAY}), time(2), time(3))
    opening = next_send_time(window, BERLIN, utc(2026, 10, 24, 12, 0))
    assert opening == utc(2026, 10, 25, 0, 0)  # 02:00 CEST, fold=0
    assert opening.astimezone(BERLIN).fold == 0
    assert window_end(window, BERLIN, opening) == utc(2026, 10, 25, 2, 0)  # 03:00 CET
    second_pass = utc(2026, 10, 25, 1, 15)  # 02:15 CET
    assert is_inside(window, BERLIN, second_pass)
    assert next_send_time(window, BERLIN, second_pass) == second_pass
    assert not is_inside(window, BERLIN, utc(2026, 10, 25, 2, 0))


def test_a_window_inside_the_repeated_hour_opens_twice() -> None:
    # 02:30-03:00 is open 00:30-01:00 UTC (CEST) and again 01:30-02:00 UTC (CET); in between it is 02:xx < 02:30.
    window = Window(frozenset({SUNDAY}), time(2, 30), time(3))
    assert window_end(window, BERLIN, utc(2026, 10, 25, 0, 40)) == utc(2026, 10, 25, 1, 0)
    assert next_send_time(window, BERLIN, utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 1, 30)
    assert window_end(window, BERLIN, utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 2, 0)


def test_a_fall_back_jump_can_reopen_a_window_mid_way() -> None:
    # 01:30-02:30: closes at 00:30 UTC (02:30 CEST), reopens at 01:00 UTC when the clock reads 02:00 CET.
    window = Window(frozenset({SUNDAY}), time(1, 30), time(2, 30))
    assert next_send_time(window, BERLIN, utc(2026, 10, 25, 0, 40)) == utc(2026, 10, 25, 1, 0)


def test_window_end_of_an_ordinary_day() -> None:
    assert window_end(DEFAULT, LOS_ANGELES, utc(2026, 3, 2, 18, 0)) == utc(2026, 3, 2, 20, 0)


def test_window_end_refuses_an_instant_outside_the_window() -> None:
    with pytest.raises(ValueError, match="not open"):
        window_end(DEFAULT, LOS_ANGELES, utc(2026, 3, 2, 20, 0))


# --- validation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "window",
    [
        Window(frozenset(), time(9), time(12)),
        Window(frozenset({7}), time(9), time(12)),
        Window(frozenset({-1, 0}), time(9), time(12)),
        Window(EVERY_DAY, time(12), time(12)),
        Window(EVERY_DAY, time(22), time(2)),
        Window(EVERY_DAY, time(9, tzinfo=UTC), time(12)),
    ],
)
def test_windows_that_never_open_are_refused(window: Window) -> None:
    with pytest.raises(ValueError):
        check_window(window)
    with pytest.raises(ValueError):
        next_send_time(window, BERLIN, utc(2026, 3, 2, 0, 0))


# --- zone_for ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contact", "campaign", "default", "expected"),
    [
        ("Asia/Kolkata", "Europe/Berlin", "America/New_York", "Asia/Kolkata"),
        (None, "Europe/Berlin", "America/New_York", "Europe/Berlin"),
        ("", "Europe/Berlin", "America/New_York", "Europe/Berlin"),
        ("Mars/Olympus_Mons", "Europe/Berlin", "America/New_York", "Europe/Berlin"),
        ("../../etc/passwd", None, "America/New_York", "America/New_York"),
        ("/etc/localtime", "zone.tab", "America/New_York", "America/New_York"),
        ("America", "europe/berlin", "America/New_York", "America/New_York"),
        (None, None, "Not/A_Zone", "UTC"),
        ("\x00", "", "", "UTC"),
    ],
)
def test_zone_for_falls_back_past_unusable_names(
    contact: str | None, campaign: str | None, default: str, expected: str
) -> None:
    assert zone_for(contact, campaign, default) == ZoneInfo(expected)


# --- properties ---------------------------------------------------------------------------------------------------

PROPERTY_ZONES = [
    LOS_ANGELES,
    NEW_YORK,
    KOLKATA,
    LORD_HOWE,
    BERLIN,
    ZoneInfo("Pacific/Chatham"),
    ZoneInfo("UTC"),
]
# Dates of DST changes in the zones above, where most of the difficulty lives.
DST_DAYS = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 9, 27), date(2026, 10, 4)]
DST_DAYS += [date(2026, 10, 25), date(2026, 11, 1)]
MINUTES_PER_DAY = 24 * 60


@st.composite
def windows(draw: st.DrawFn) -> Window:
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    start = draw(st.integers(0, MINUTES_PER_DAY - 2))
    end = draw(st.integers(start + 1, MINUTES_PER_DAY - 1))
    return Window(days, time(*divmod(start, 60)), time(*divmod(end, 60)))


near_dst_changes = st.builds(
    lambda day, offset: datetime.combine(day, time(), UTC) + timedelta(seconds=offset),
    st.sampled_from(DST_DAYS),
    st.integers(-3 * 86400, 2 * 86400),
)
anywhere = st.datetimes(datetime(2000, 1, 1), datetime(2037, 12, 31), timezones=st.just(UTC))


def _whole_minutes(low: datetime, high: datetime) -> list[datetime]:
    """Every whole UTC minute in (low, high)."""
    first = low.replace(second=0, microsecond=0) + timedelta(minutes=1)
    count = max(0, int((high - first) / timedelta(minutes=1)) + 1)
    return [m for m in (first + timedelta(minutes=i) for i in range(count)) if m < high]


@settings(max_examples=300, deadline=None)
@given(windows(), st.sampled_from(PROPERTY_ZONES), st.one_of(near_dst_changes, anywhere))
def test_next_send_time_is_the_first_inside_instant(
    window: Window, zone: ZoneInfo, earliest: datetime
) -> None:
    result = next_send_time(window, zone, earliest)
    assert result >= earliest
    assert is_inside(window, zone, result)
    assert result == earliest or result.tzinfo is UTC
    # Window edges and zone offsets fall on whole minutes, so any inside instant in [earliest, result) would
    # show as an inside whole minute in between: scanning all of them proves there is none.
    assert not any(is_inside(window, zone, minute) for minute in _whole_minutes(earliest, result))
    assert next_send_time(window, zone, result) == result


@settings(max_examples=200, deadline=None)
@given(windows(), st.sampled_from(PROPERTY_ZONES), st.one_of(near_dst_changes, anywhere))
def test_window_end_is_where_the_window_stops_being_open(
    window: Window, zone: ZoneInfo, earliest: datetime
) -> None:
    opening = next_send_time(window, zone, earliest)
    closing = window_end(window, zone, opening)
    assert closing > opening
    assert not is_inside(window, zone, closing)
    assert all(is_inside(window, zone, minute) for minute in _whole_minutes(opening, closing))


def test_the_campaign_definitions_send_window_fits() -> None:
    from campaigns.definitions.model import SendWindow

    # Sunday 2026-03-08 12:00 UTC in Berlin -> Monday 09:00 CET.
    assert next_send_time(SendWindow(), BERLIN, utc(2026, 3, 8, 12)) == utc(2026, 3, 9, 8, 0)
