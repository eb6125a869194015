"""The scalar fields of a campaign file: each parser takes the YAML value and returns the field or raises Reject.

The messages say what is wrong and how to write it right ("'3 days' is not a duration; use a number with a
unit: 30m, 12h, 3d or 2w ..."), with a "did you mean" where a typo is likely.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import timedelta

from campaigns.definitions.problems import Reject, describe, quote
from campaigns.messages.locales import normalise_locale
from storage.enums import CampaignKind, Channel

__all__ = [
    "EVENT_RE",
    "MAX_DAYS",
    "NAME_RE",
    "as_text",
    "duration_parser",
    "format_duration",
    "int_parser",
    "parse_brand",
    "parse_channels",
    "parse_duration",
    "parse_event",
    "parse_follow_up",
    "parse_kind",
    "parse_link",
    "parse_locale",
    "parse_name",
    "parse_reminder",
    "parse_sample_rate",
    "parse_slack_channel",
    "parse_timezone",
]

MAX_DAYS = 3650
MAX_NAME_LENGTH = 100
MAX_BRAND_LENGTH = 100
MAX_DAILY_TARGET = 10_000_000

NAME_RE = re.compile(r"[a-z0-9_-]{1,100}")
# Event names are matched exactly against what the events API receives; "." is allowed for "order.delivered".
EVENT_RE = re.compile(r"[a-z0-9_.-]{1,100}")


def as_text(value: object, what: str) -> str:
    """Stripped, non-empty text; whole numbers are accepted as text (``name: 2025`` means "2025")."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise Reject(f"must be {what}, not {describe(value)}")
    text = value.strip()
    if not text:
        raise Reject("is empty")
    return text


def _slug_hint(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:MAX_NAME_LENGTH]
    return f", e.g. '{slug}'" if slug and slug != text else ""


def _check_length(text: str) -> None:
    if len(text) > MAX_NAME_LENGTH:
        raise Reject(f"is too long ({len(text)} characters; at most {MAX_NAME_LENGTH})")


def parse_name(value: object) -> str:
    text = as_text(value, "text")
    _check_length(text)
    if not NAME_RE.fullmatch(text):
        raise Reject(
            f"{quote(text)} is not a valid name: use 1-{MAX_NAME_LENGTH} lowercase letters (a-z), digits, "
            f"'-' or '_'{_slug_hint(text)}"
        )
    return text


def parse_event(value: object) -> str:
    text = as_text(value, "an event name")
    _check_length(text)
    if not EVENT_RE.fullmatch(text):
        raise Reject(
            f"{quote(text)} is not a valid event name: use 1-100 lowercase letters (a-z), digits, '_', '-' or "
            f"'.'{_slug_hint(text)}"
        )
    return text


def parse_kind(value: object) -> CampaignKind:
    text = as_text(value, "relationship or transactional").lower()
    try:
        return CampaignKind(text)
    except ValueError:
        hint = _did_you_mean(text, CampaignKind)
        raise Reject(f"{quote(text)} is not a kind; use relationship or transactional{hint}") from None


def int_parser(low: int, high: int, unit: str) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Reject(f"must be a whole number of {unit}, not {describe(value)}")
        if not low <= value <= high:
            raise Reject(f"must be from {low} to {high} {unit}, not {value}")
        return value

    return parse


_DURATION_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_UNIT_WORDS = {
    "w": ("w", "wk", "week", "weeks"),
    "d": ("d", "day", "days"),
    "h": ("h", "hr", "hour", "hours"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "s": ("s", "sec", "secs", "second", "seconds"),  # a transactional delay of "30s" (or "0s": at once)
}
_UNIT_OF = {word: unit for unit, words in _UNIT_WORDS.items() for word in words}
_DURATION_PART = re.compile(r"\s*(\d+)\s*([a-z]+)\s*")
_DURATION_HELP = (
    "use a number with a unit: 30m, 12h, 3d or 2w (combinations such as 1d12h work), or whole days"
)


def parse_duration(value: object) -> timedelta:
    """A duration from a campaign file: "14d", "12h", "30m", "30s", "1w", "1d 12h", or a whole number of days.

    Raises ValueError with a message that says how to write one.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a duration must not be negative; {_DURATION_HELP}")
        return timedelta(days=value)
    if not isinstance(value, str):
        raise ValueError(f"must be a duration, not {describe(value)}; {_DURATION_HELP}")
    text = value.strip().lower()
    if text.isdigit():
        return timedelta(days=int(text))
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(f"{number}{unit}" for number, unit in parts) != re.sub(r"\s+", "", text):
        raise ValueError(f"{quote(value)} is not a duration; {_DURATION_HELP}")
    total = timedelta(0)
    for number, word in parts:
        if word not in _UNIT_OF:
            raise ValueError(f"{quote(value)} is not a duration ('{word}' is not a unit); {_DURATION_HELP}")
        total += int(number) * _DURATION_UNITS[_UNIT_OF[word]]
    return total


def format_duration(duration: timedelta) -> str:
    """The shortest campaign-file spelling of a duration ("14d", "1d12h", "90m"); "0m" for zero."""
    minutes, seconds = divmod(int(duration.total_seconds()), 60)
    if seconds:
        return f"{int(duration.total_seconds())}s"
    parts = []
    for unit, size in (("d", 1440), ("h", 60), ("m", 1)):
        count, minutes = divmod(minutes, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0m"


def duration_parser(*, allow_zero: bool) -> Callable[[object], timedelta]:
    def parse(value: object) -> timedelta:
        try:
            duration = parse_duration(value)
        except (ValueError, OverflowError) as exc:
            raise Reject(str(exc)) from None
        if duration > timedelta(days=MAX_DAYS):
            raise Reject(f"{quote(value)} is too long (at most {MAX_DAYS} days)")
        if not allow_zero and duration <= timedelta(0):
            raise Reject("must be longer than 0")
        return duration

    return parse


_NEVER = ("never", "none", "no", "off")


def parse_reminder(value: object) -> timedelta | None:
    """remind_after: a duration, or null / false / "never" for no reminder."""
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() in _NEVER:
        return None
    if value is True:
        raise Reject("must be a duration such as 3d, or never")
    return duration_parser(allow_zero=False)(value)


def parse_channels(value: object) -> tuple[Channel, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise Reject(f"must be a list such as [sms, email], not {describe(value)}")
    if not items:
        raise Reject("must name at least one channel (sms, email)")
    channels: list[Channel] = []
    for item in items:
        channel = _parse_channel(item)
        if channel in channels:
            raise Reject(f"lists '{channel}' twice; each channel is tried once, in the order given")
        channels.append(channel)
    return tuple(channels)


def _parse_channel(item: object) -> Channel:
    text = as_text(item, "a channel name (sms or email)").lower()
    try:
        return Channel(text)
    except ValueError:
        raise Reject(
            f"{quote(text)} is not a channel; use sms or email{_did_you_mean(text, Channel)}"
        ) from None


def _did_you_mean(text: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(text, [str(choice) for choice in choices], n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


@functools.cache
def _zones_by_folded_name() -> dict[str, str]:
    """Every IANA zone name keyed without case (reading the tz database is slow, so once)."""
    return {name.casefold(): name for name in zoneinfo.available_timezones() | {"UTC"}}


def parse_timezone(value: object) -> str:
    text = as_text(value, "an IANA time zone such as Europe/Berlin")
    name = _zones_by_folded_name().get(text.casefold())
    try:
        zoneinfo.ZoneInfo(name or text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Reject(
            f"{quote(text)} is not an IANA time zone (e.g. Europe/Berlin, America/New_York)"
        ) from None
    return name or text


def parse_locale(value: object) -> str:
    text = as_text(value, "a locale such as en or pt-BR")
    locale = normalise_locale(text)
    if locale is None:
        raise Reject(f"{quote(text)} is not a locale; use a language code such as en, de or pt-BR")
    return locale


def parse_sample_rate(value: object) -> float:
    """A fraction in (0, 1]; "25%" is accepted because that is how people say it."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            raise Reject(f"{quote(value)} is not a percentage") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Reject(f"must be a number between 0 and 1 (e.g. 0.25 or '25%'), not {describe(value)}")
    if not 0 < value <= 1:
        raise Reject(f"must be more than 0 and at most 1 (e.g. 0.25 or '25%'), not {value}")
    return float(value)


_SLACK_CHANNEL = re.compile(r"[CG][A-Z0-9]{6,20}")
_CATEGORIES = ("detractor", "passive", "promoter")


def parse_slack_channel(value: object) -> str:
    text = as_text(value, "a Slack channel id")
    if not _SLACK_CHANNEL.fullmatch(text):
        raise Reject(
            f"{quote(text)} is not a Slack channel id; use the id (e.g. C0123ABCDEF, from the channel's details), "
            "not its name"
        )
    return text


MAX_LINK_LENGTH = 500
_LINK = re.compile(r"https?://[^\s/?#]+\.[^\s/?#]+(?:[/?#]\S*)?", re.IGNORECASE)


def parse_link(value: object) -> str:
    """A web address promoters are sent to (a review or referral page): http(s), no spaces."""
    text = as_text(value, "a web address")
    if len(text) > MAX_LINK_LENGTH:
        raise Reject(f"is too long ({len(text)} characters; at most {MAX_LINK_LENGTH})")
    if not _LINK.fullmatch(text):
        raise Reject(
            f"{quote(text)} is not a web address; use a full https:// link, e.g. https://g.page/r/.../review"
        )
    return text


def parse_follow_up(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise Reject(f"must be a list such as [detractor, passive], not {describe(value)}")
    found = []
    for item in items:
        text = as_text(item, "a category").lower().rstrip("s")
        if text not in _CATEGORIES:
            raise Reject(f"{quote(text)} is not a category; use detractor, passive or promoter")
        found.append(text)
    return tuple(c for c in _CATEGORIES if c in found or c == "detractor")


def parse_brand(value: object) -> str:
    text = as_text(value, "text")
    if len(text) > MAX_BRAND_LENGTH:
        raise Reject(f"is too long ({len(text)} characters; at most {MAX_BRAND_LENGTH})")
    return text


def parse_flag(value: object) -> bool:
    """A yes/no field such as `anonymous`: YAML true or false (YAML 1.2, so not yes/no or on/off)."""
    if not isinstance(value, bool):
        raise Reject(f"must be true or false, not {describe(value)}")
    return value
