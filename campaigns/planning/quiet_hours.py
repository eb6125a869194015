"""Legal quiet hours: the hours in which the law lets a text reach a recipient, intersected with a campaign's window.

Pure: the rules are plain values read from `campaigns/quiet_hours.yaml` (and an override file) by the caller;
the phone number's country, state and zone come from the `phonenumbers` package's bundled data. A recipient's
zone is the contact's own, else the number's when its region has a single zone, else the campaign's. A US
number gets the federal rule and its state's (from the area code), and the stricter of both holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import yaml
from phonenumbers import geocoder, timezone

from campaigns.planning.windows import WindowLike, is_inside, next_send_time, own_zone, zone_for
from storage.enums import Channel

SHIPPED_RULES = Path(__file__).resolve().parent.parent / "quiet_hours.yaml"

_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_EVERY_DAY = frozenset(range(7))
# The geocoder names a US number's state in full ("Florida", "Washington State") or after a city ("Miami, FL").
_STATES = {
    "Florida": "FL",
    "Oklahoma": "OK",
    "Maryland": "MD",
    "Washington State": "WA",
    "Washington": "WA",
}
# Two windows that never overlap would make the search below run forever; after this many steps it gives up
# and returns a time outside both, which the send-time check then refuses again.
_MAX_STEPS = 32


_EASTERN, _CENTRAL, _MOUNTAIN, _PACIFIC = (
    ZoneInfo(f"America/{city}") for city in ("New_York", "Chicago", "Denver", "Los_Angeles")
)
STATE_ZONES: dict[str, tuple[ZoneInfo, ...]] = {
    "FL": (_EASTERN, _CENTRAL),
    "IN": (_EASTERN, _CENTRAL),
    "KY": (_EASTERN, _CENTRAL),
    "MI": (_EASTERN, _CENTRAL),
    "TN": (_EASTERN, _CENTRAL),
    "KS": (_CENTRAL, _MOUNTAIN),
    "NE": (_CENTRAL, _MOUNTAIN),
    "ND": (_CENTRAL, _MOUNTAIN),
    "SD": (_CENTRAL, _MOUNTAIN),
    "TX": (_CENTRAL, _MOUNTAIN),
    "ID": (_MOUNTAIN, _PACIFIC),
    "OR": (_MOUNTAIN, _PACIFIC),
    "AK": (ZoneInfo("America/Anchorage"), ZoneInfo("America/Adak")),
}
"""US states across two time zones: a number's prefix says one, its owner may live in the other."""


@dataclass(frozen=True)
class QuietRule:
    """One jurisdiction's rule: allowed weekdays and local hours, and a cap on texts per 24 hours."""

    key: str
    start: time
    end: time
    days: frozenset[int] = _EVERY_DAY
    max_per_24h: int | None = None
    source: str = ""


@dataclass(frozen=True)
class Recipient:
    """Where the law sees a text's recipient: the number's country, US state and the local zone."""

    region: str | None
    state: str | None
    zone: ZoneInfo
    also: tuple[ZoneInfo, ...] = ()  # other zones the number may be in, where the law must hold as well

    @property
    def zones(self) -> tuple[ZoneInfo, ...]:
        return (self.zone, *(z for z in self.also if z != self.zone))


@dataclass(frozen=True)
class LegalWindow:
    """The intersection of the rules that apply to one recipient (a `WindowLike` in `zone`)."""

    rule: str  # the key of the strictest rule, e.g. "US-FL"
    days: frozenset[int]
    start: time
    end: time
    zone: ZoneInfo
    max_per_24h: int | None
    also: tuple[ZoneInfo, ...] = ()  # a recipient whose zone is not known for sure: the window holds in each

    @property
    def zones(self) -> tuple[ZoneInfo, ...]:
        return (self.zone, *(z for z in self.also if z != self.zone))

    def describe(self) -> str:
        cap = f", at most {self.max_per_24h} texts in 24 h" if self.max_per_24h else ""
        where = " and ".join(zone.key for zone in self.zones)
        return f"legal quiet hours: {self.rule} {self.start:%H:%M}-{self.end:%H:%M} {where}{cap}"

    def contains(self, at: datetime) -> bool:
        return all(is_inside(self, zone, at) for zone in self.zones)

    def first_outside(self, at: datetime) -> ZoneInfo | None:
        return next((zone for zone in self.zones if not is_inside(self, zone, at)), None)


def shipped_rules() -> dict[str, QuietRule]:
    return parse_rules(SHIPPED_RULES.read_text(encoding="utf-8"))


def legal_for(
    channel: Channel,
    to: str,
    *,
    contact_timezone: str | None,
    campaign_timezone: str | None,
    default_timezone: str,
    rules: Mapping[str, QuietRule],
) -> LegalWindow | None:
    """The law's window for a message on `channel` to `to` (texts only; email has no quiet hours here)."""
    if channel is not Channel.SMS:
        return None
    campaign_zone = zone_for(None, campaign_timezone, default_timezone)
    return legal_window(rules, recipient(to, own_zone(contact_timezone), campaign_zone))


def parse_rules(text: str, base: Mapping[str, QuietRule] | None = None) -> dict[str, QuietRule]:
    """Rules from YAML text (`rules: {KEY: {...}}`), each replacing `base`'s of the same key; `disabled: true` drops one."""
    rules = dict(base or {})
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"not YAML: {error}") from None
    for key, spec in (data.get("rules") or {}).items():
        key = str(key).upper()
        if spec.get("disabled"):
            rules.pop(key, None)
            continue
        days = frozenset(_DAYS[str(day).lower()[:3]] for day in spec.get("days", _DAYS))
        start, end = _time(spec["start"]), _time(spec["end"])
        if not start < end:
            raise ValueError(f"quiet hours rule {key}: end {end:%H:%M} must be after start {start:%H:%M}")
        cap = spec.get("max_per_24h")
        rules[key] = QuietRule(key, start, end, days, int(cap) if cap else None, str(spec.get("source", "")))
    _check_overlaps(rules)
    return rules


def _check_overlaps(rules: Mapping[str, QuietRule]) -> None:
    """ValueError when a state's rule and its country's leave no hour at all: no text could ever go."""
    for key, rule in rules.items():
        country = rules.get(key.partition("-")[0]) if "-" in key else None
        if country is None:
            continue
        if not (max(rule.start, country.start) < min(rule.end, country.end) and rule.days & country.days):
            raise ValueError(
                f"quiet hours rule {key} ({rule.start:%H:%M}-{rule.end:%H:%M}) and {country.key} "
                f"({country.start:%H:%M}-{country.end:%H:%M}) leave no hour to send in"
            )


def recipient(phone: str, contact_zone: ZoneInfo | None, campaign_zone: ZoneInfo) -> Recipient:
    """The recipient of a text to `phone` (E.164) as the rules see it."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return Recipient(None, None, contact_zone or campaign_zone)
    region = phonenumbers.region_code_for_number(number)
    state = _us_state(number) if region == "US" else None
    if contact_zone is not None:
        return Recipient(region, state, contact_zone)
    if region == "US":  # numbers move with people: judge in every zone of the number and of its state
        zones = _zones(number) + STATE_ZONES.get(state or "", ())
        if zones:
            return Recipient(region, state, zones[0], zones[1:])
    return Recipient(region, state, _single_zone(number) or campaign_zone)


def legal_window(rules: Mapping[str, QuietRule], who: Recipient) -> LegalWindow | None:
    """The window the law allows for `who`, or None when no rule applies."""
    keys = [who.region, f"{who.region}-{who.state}" if who.state else None]
    applicable = [rules[key] for key in keys if key and key in rules]
    if not applicable:
        return None
    start = max(rule.start for rule in applicable)
    end = min(rule.end for rule in applicable)
    caps = [rule.max_per_24h for rule in applicable if rule.max_per_24h]
    # The rule that narrows most names the window: the state's when it is stricter than the country's.
    strictest = min(applicable, key=lambda rule: _minutes(rule.end) - _minutes(rule.start))
    days = frozenset.intersection(*(rule.days for rule in applicable))
    return LegalWindow(strictest.key, days, start, end, who.zone, min(caps) if caps else None, who.also)


def allowed(window: WindowLike, zone: ZoneInfo, legal: LegalWindow | None, at: datetime) -> bool:
    """Whether `at` is inside the campaign's window (in `zone`) and the legal one (in its own zone)."""
    inside = is_inside(window, zone, at)
    return inside and (legal is None or legal.contains(at))


def next_allowed(
    window: WindowLike, zone: ZoneInfo, legal: LegalWindow | None, earliest: datetime
) -> datetime:
    """The first instant at or after `earliest` inside both windows (they may be judged in different zones)."""
    moment = next_send_time(window, zone, earliest)
    if legal is None:
        return moment
    for _ in range(_MAX_STEPS):
        outside = legal.first_outside(moment)
        if outside is None:
            return moment
        moment = next_send_time(window, zone, next_send_time(legal, outside, moment))
    return moment


def cap_frees_at(legal: LegalWindow | None, sent_at: list[datetime], now: datetime) -> datetime | None:
    """When another text may go, if the cap is reached by the texts sent in the 24 hours before `now`."""
    if legal is None or legal.max_per_24h is None:
        return None
    recent = sorted(at for at in sent_at if at > now - timedelta(hours=24))
    if len(recent) < legal.max_per_24h:
        return None
    return recent[len(recent) - legal.max_per_24h] + timedelta(hours=24)


def _us_state(number: phonenumbers.PhoneNumber) -> str | None:
    place = geocoder.description_for_number(number, "en")
    if place in _STATES:
        return _STATES[place]
    head, _, tail = place.rpartition(", ")
    return tail if head and len(tail) == 2 and tail.isupper() else None


def _zones(number: phonenumbers.PhoneNumber) -> tuple[ZoneInfo, ...]:
    return tuple(
        ZoneInfo(z) for z in timezone.time_zones_for_number(number) if z != timezone.UNKNOWN_TIMEZONE
    )


def _single_zone(number: phonenumbers.PhoneNumber) -> ZoneInfo | None:
    zones = timezone.time_zones_for_number(number)
    if len(zones) != 1 or zones[0] == timezone.UNKNOWN_TIMEZONE:
        return None
    return ZoneInfo(zones[0])


def _time(value: object) -> time:
    hours, _, minutes = str(value).partition(":")
    return time(int(hours), int(minutes))


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute
