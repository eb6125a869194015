"""Campaign files: parse and validate the YAML that `nps campaigns apply` reads, and store the result as JSON.

Every problem of a file is reported at once, each with the path of the field it is about
(``campaigns[1] (post-delivery).send_window.start``), so an admin can fix a file in one pass.

How the fields combine (the planner relies on these rules):

- ``relationship``: every contact in the audience is surveyed every ``interval_days`` (default 90). With an
  ``event`` it becomes the combination "first survey ``delay`` after the event, then every ``interval_days``"
  (e.g. after onboarding, then every three months); without one, the first survey is due ``first_after_days``
  after the contact was created.
- ``transactional``: ``event`` is required; the survey is due ``delay`` after the event, at most one per
  contact per ``dedupe_days`` (0 turns deduplication off; the fatigue rule still applies). Giving
  ``interval_days`` makes it the same combination as a relationship campaign with an event, so both spellings
  work. After parsing, ``interval_days is None`` means "one survey per event" and ``event is None`` means
  "not triggered by events".
- ``first_after_days`` (default 0) is a floor for every kind: no survey before the contact is that many days
  old. ``delay`` and ``dedupe_days`` only apply with an ``event``, so giving them without one is an error.

YAML is read with YAML 1.2 scalars: only true/false are booleans (a locale ``no`` stays "no"), ``09:00`` is text
and not the sexagesimal number 540, ``01234`` stays text (a ZIP code in an audience), dates stay text until a
field parses them, and a key given twice in one mapping is an error instead of silently winning.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import cached_property
from typing import Any, TypeVar

import yaml
from yaml.constructor import ConstructorError

from campaigns.contacts.validation import STANDARD_FIELDS
from campaigns.messages.catalogue import KEYS as CATALOGUE_KEYS
from campaigns.messages.templates import (
    SAMPLE_VARIABLES,
    SHIPPED_TEXTS,
    MessageTexts,
    TemplateProblem,
    render,
    resolve_locale,
    sms_segments,
    template_syntax_problem,
)
from storage.enums import CampaignKind, Channel

__all__ = [
    "EVENT_RE",
    "NAME_RE",
    "Audience",
    "CampaignDefinition",
    "CampaignFileError",
    "MessageTexts",
    "ParsedFile",
    "Problem",
    "SendWindow",
    "definition_from_json",
    "definition_to_json",
    "format_duration",
    "normalise_locale",
    "parse_campaign_file",
    "parse_duration",
]

T = TypeVar("T")
D = TypeVar("D")  # the type of a default, which may differ from the parsed type (e.g. None)

MAX_DAYS = 3650
MAX_NAME_LENGTH = 100
MAX_BRAND_LENGTH = 100
MAX_DAILY_TARGET = 10_000_000
MAX_SMS_SEGMENTS = 2
DEFAULT_INTERVAL_DAYS = 90
DEFAULT_DEDUPE_DAYS = 30
DEFAULT_REMIND_AFTER = timedelta(days=3)
DEFAULT_EXPIRES_AFTER = timedelta(days=14)
DEFAULT_CHANNELS = (Channel.SMS, Channel.EMAIL)
DEFAULT_LOCALE = "en"
# Monday to Thursday, 09:00-12:00 in the recipient's time zone: when NPS surveys are answered most.
DEFAULT_DAYS = frozenset({0, 1, 2, 3})
DEFAULT_START = time(9)
DEFAULT_END = time(12)

NAME_RE = re.compile(r"[a-z0-9_-]{1,100}")
# Event names are matched exactly against what the events API receives; "." is allowed for "order.delivered".
EVENT_RE = re.compile(r"[a-z0-9_.-]{1,100}")
JSON_VERSION = 1


# --- the definition -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendWindow:
    """Weekdays (0 = Monday ... 6 = Sunday) and local wall-clock hours [start, end) a recipient may get a message."""

    days: frozenset[int] = DEFAULT_DAYS
    start: time = DEFAULT_START
    end: time = DEFAULT_END

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"send window days must be a non-empty set of 0..6, not {sorted(self.days)}")
        if not self.start < self.end:
            raise ValueError(f"a send window must end after it starts ({self.start}-{self.end})")


@dataclass(frozen=True)
class Audience:
    """Who a campaign surveys: property filters (all must hold; a tuple means any of) and a creation range.

    ``created_after`` is inclusive and ``created_before`` exclusive, so adjacent ranges never overlap.
    """

    properties: dict[str, tuple[str, ...]] = field(default_factory=dict)
    created_before: datetime | None = None
    created_after: datetime | None = None

    def __post_init__(self) -> None:
        # Naive bounds are UTC, like naive creation times; comparing naive with aware would raise.
        for name in ("created_before", "created_after"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                object.__setattr__(self, name, moment.replace(tzinfo=UTC))

    @cached_property
    def _wanted(self) -> dict[str, frozenset[str]]:
        # Folded once per definition: matches() runs for every contact of every planning pass.
        return {key: frozenset(_fold(value) for value in values) for key, values in self.properties.items()}

    def matches(self, properties: Mapping[str, object], created_at: datetime) -> bool:
        """Whether a contact belongs to the audience.

        Values are compared as stripped text without case ("EU" matches " eu "); a property the contact lacks
        (or has empty) never matches. The property name is looked up exactly, then without case, because CSV
        headers are often capitalised ("Plan"). A naive ``created_at`` is taken as UTC.
        """
        if not self._created_in_range(_as_utc(created_at)):
            return False
        return all(_is_one_of(_lookup(properties, key), wanted) for key, wanted in self._wanted.items())

    def _created_in_range(self, created_at: datetime) -> bool:
        if self.created_after is not None and created_at < self.created_after:
            return False
        return self.created_before is None or created_at < self.created_before


def _lookup(properties: Mapping[str, object], key: str) -> object:
    if key in properties:
        return properties[key]
    folded = key.casefold()
    return next((value for name, value in properties.items() if name.casefold() == folded), None)


def _is_one_of(value: object, wanted: frozenset[str]) -> bool:
    folded = _fold(value)
    return bool(folded) and folded in wanted


def _fold(value: object) -> str:
    """Comparable text of a property value; "" for a missing one."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # the JSON spelling, as contacts store booleans
    return str(value).strip().casefold()


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class CampaignDefinition:
    """One validated campaign; see the module docstring for how kind, event and interval_days combine.

    Defaults are those of the campaign file except ``interval_days``, which the parser sets to 90 for a
    relationship campaign (a relationship campaign always has one; a transactional campaign always an event).
    ``timezone`` None means the service default (NPS_TIMEZONE) for contacts without a zone of their own;
    ``remind_after`` None means no reminder; ``min_days_between_surveys`` None means the global fatigue rule.
    """

    name: str
    kind: CampaignKind
    event: str | None = None
    delay: timedelta = timedelta(0)
    interval_days: int | None = None
    first_after_days: int = 0
    dedupe_days: int = DEFAULT_DEDUPE_DAYS
    min_days_between_surveys: int | None = None
    audience: Audience = field(default_factory=Audience)
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS
    send_window: SendWindow = field(default_factory=SendWindow)
    timezone: str | None = None
    remind_after: timedelta | None = DEFAULT_REMIND_AFTER
    expires_after: timedelta = DEFAULT_EXPIRES_AFTER
    sample_rate: float = 1.0
    daily_target: int | None = None
    locale: str = DEFAULT_LOCALE
    brand: str | None = None
    messages: dict[str, MessageTexts] = field(default_factory=dict)
    # Slack channel id for this campaign's alerts (None: SLACK_ALERT_CHANNEL / SLACK_KUDOS_CHANNEL).
    slack_channel: str | None = None
    # Categories whose answers open a follow-up with a deadline; detractors always do.
    follow_up: tuple[str, ...] = ("detractor",)

    def __post_init__(self) -> None:
        # The invariants the planner depends on; the parser never breaks them, hand-built definitions might.
        if self.kind is CampaignKind.RELATIONSHIP and self.interval_days is None:
            raise ValueError("a relationship campaign needs interval_days")
        if self.kind is CampaignKind.TRANSACTIONAL and self.event is None:
            raise ValueError("a transactional campaign needs an event")
        if not self.channels:
            raise ValueError("a campaign needs at least one channel")


# --- problems -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a campaign file; ``path`` is empty for problems of the file as a whole."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class CampaignFileError(ValueError):
    """A campaign file is invalid; ``problems`` lists every problem found, str() shows one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class ParsedFile:
    """The campaigns of a valid file and warnings worth showing (e.g. an SMS text that is too long)."""

    campaigns: list[CampaignDefinition]
    warnings: list[str]


class _Reject(Exception):
    """A value is invalid; the message completes "<path>: ..."."""


@dataclass
class _Report:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")


@dataclass
class _Section:
    """One YAML mapping being read: reports problems under its path and remembers which keys failed.

    A failed field reads as its default so reading can go on and find the other problems; checks that combine
    fields ask :meth:`valid` first, so a bad value never causes a second, misleading complaint.
    """

    data: Mapping[Any, object]
    path: str
    report: _Report
    failed: set[str] = field(default_factory=set)

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def given(self, key: str) -> bool:
        return self.data.get(key) is not None

    def valid(self, *keys: str) -> bool:
        return not self.failed.intersection(keys)

    def fail(self, key: str, message: str) -> None:
        self.report.problem(self.at(key), message)
        self.failed.add(key)

    def read(
        self, key: str, parse: Callable[[object], T], default: D, *, null_is_value: bool = False
    ) -> T | D:
        """The parsed value of ``key``; ``default`` when absent (or null, unless null means something)."""
        if key not in self.data or (self.data[key] is None and not null_is_value):
            return default
        try:
            return parse(self.data[key])
        except _Reject as reject:
            self.fail(key, str(reject))
            return default

    def require(self, key: str, parse: Callable[[object], T], what: str) -> T | None:
        if not self.given(key):
            self.fail(key, f"is required ({what})")
            return None
        return self.read(key, parse, None)

    def child(self, key: str, what: str) -> _Section | None:
        """The section under ``key``; None (with a problem when it is not a mapping) when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.fail(key, f"must be a mapping ({what}), not {_describe(value)}")
            return None
        return _Section(value, self.at(key), self.report)

    def check_keys(self, known: Iterable[str], listing: str = "known fields") -> None:
        """Report keys that are not fields, suggesting the closest one (a typo would otherwise be ignored)."""
        known = list(known)
        for key in self.data:
            if key not in known:
                self.report.problem(self.at(str(key)), _unknown_key_message(key, known, listing))


def _unknown_key_message(key: object, known: list[str], listing: str = "known fields") -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"{listing}: {', '.join(known)}"
    return f"unknown field '{key}'; {hint}"


def _describe(value: object) -> str:
    if isinstance(value, str):
        return f"text {_quote(value)}"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _quote(value: object, limit: int = 60) -> str:
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text) if any(char in text for char in "\n\r\t'") else f"'{text}'"


# --- YAML ---------------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars and duplicate keys reported (see the module docstring for why)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                identity = (key_node.tag, key_node.value)
                if identity in seen:
                    raise ConstructorError(
                        None, None, f"the key '{key_node.value}' is given twice", key_node.start_mark
                    )
                seen.add(identity)
        return super().construct_mapping(node, deep=deep)


_REPLACED_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "timestamp")}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def _load_yaml(text: str) -> object:
    """The document, or CampaignFileError with one problem naming the line of a syntax error."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: builds plain data only
    except yaml.YAMLError as exc:
        raise CampaignFileError([Problem("", _yaml_message(exc))]) from None


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if isinstance(exc, ConstructorError):
        detail = problem  # our own duplicate-key message, complete as it is
    else:
        detail = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
    return f"line {mark.line + 1}, column {mark.column + 1}: {detail}" if mark is not None else detail


# --- the file -----------------------------------------------------------------------------------------------

_CAMPAIGN_FIELDS = (
    "name",
    "kind",
    "event",
    "delay",
    "interval_days",
    "first_after_days",
    "dedupe_days",
    "min_days_between_surveys",
    "audience",
    "channels",
    "send_window",
    "timezone",
    "remind_after",
    "expires_after",
    "sample_rate",
    "daily_target",
    "locale",
    "brand",
    "messages",
    "slack_channel",
    "follow_up",
)


def parse_campaign_file(text: str) -> ParsedFile:
    """Parse and validate a campaign file; CampaignFileError lists every problem of it."""
    document = _load_yaml(text)
    report = _Report()
    campaigns = _read_document(document, report)
    if report.problems:
        raise CampaignFileError(report.problems)
    return ParsedFile(campaigns, report.warnings)


def _read_document(document: object, report: _Report) -> list[CampaignDefinition]:
    if document is None:
        report.problem("", "the file is empty; it needs a 'campaigns:' list")
        return []
    if not isinstance(document, Mapping):
        report.problem("", f"the file must be a mapping with a 'campaigns:' list, not {_describe(document)}")
        return []
    for key in document:
        if key != "campaigns":
            report.problem(str(key), _unknown_key_message(key, ["campaigns"]))
    items = document.get("campaigns")
    if not isinstance(items, list) or not items:
        what = "missing" if items is None else f"{_describe(items)}"
        report.problem("campaigns", f"must be a non-empty list of campaigns ({what})")
        return []
    return _read_campaigns(items, report)


def _read_campaigns(items: list[object], report: _Report) -> list[CampaignDefinition]:
    campaigns: list[CampaignDefinition] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        path = f"campaigns[{index}]"
        if not isinstance(item, Mapping):
            report.problem(path, f"must be a mapping of fields (name, kind, ...), not {_describe(item)}")
            continue
        name = _read_name(item, path, report)
        if name is not None and name in first_index:
            report.problem(
                f"{path} ({name}).name",
                f"'{name}' is already the name of campaigns[{first_index[name]}]; names must be unique",
            )
        elif name is not None:
            first_index[name] = index
        definition = _read_campaign(item, f"{path} ({name})" if name else path, name, report)
        if definition is not None:
            campaigns.append(definition)
    return campaigns


def _read_name(item: Mapping[Any, object], path: str, report: _Report) -> str | None:
    section = _Section(item, path, report)
    return section.require("name", _parse_name, "a unique lowercase slug such as quarterly-pulse")


def _read_campaign(
    item: Mapping[Any, object], path: str, name: str | None, report: _Report
) -> CampaignDefinition | None:
    """One campaign, or None when it has problems (all of them reported)."""
    before = len(report.problems)
    section = _Section(item, path, report)
    section.check_keys(_CAMPAIGN_FIELDS)
    kind = section.require("kind", _parse_kind, "relationship or transactional")
    values = _read_fields(section, kind)
    _check_combinations(section, kind, values)
    _check_texts(section, values)
    if len(report.problems) > before or name is None or kind is None:
        return None
    return CampaignDefinition(name=name, kind=kind, **values)


def _read_fields(section: _Section, kind: CampaignKind | None) -> dict[str, Any]:
    """Every field except name and kind, defaults applied; problems go to the section's report."""
    relationship = kind is CampaignKind.RELATIONSHIP
    return {
        "event": section.read("event", _parse_event, None),
        "delay": section.read("delay", _duration_parser(allow_zero=True), timedelta(0)),
        "interval_days": section.read(
            "interval_days", _int_parser(1, MAX_DAYS, "days"), DEFAULT_INTERVAL_DAYS if relationship else None
        ),
        "first_after_days": section.read("first_after_days", _int_parser(0, MAX_DAYS, "days"), 0),
        "dedupe_days": section.read("dedupe_days", _int_parser(0, MAX_DAYS, "days"), DEFAULT_DEDUPE_DAYS),
        "min_days_between_surveys": section.read(
            "min_days_between_surveys", _int_parser(1, MAX_DAYS, "days"), None
        ),
        "audience": _nested(section, "audience", _AUDIENCE_HELP, _read_audience, Audience()),
        "channels": section.read("channels", _parse_channels, DEFAULT_CHANNELS),
        "send_window": _nested(
            section, "send_window", "days, start and end", _read_send_window, SendWindow()
        ),
        "timezone": section.read("timezone", _parse_timezone, None),
        "remind_after": section.read(
            "remind_after", _parse_reminder, DEFAULT_REMIND_AFTER, null_is_value=True
        ),
        "expires_after": section.read(
            "expires_after", _duration_parser(allow_zero=False), DEFAULT_EXPIRES_AFTER
        ),
        "sample_rate": section.read("sample_rate", _parse_sample_rate, 1.0),
        "daily_target": section.read(
            "daily_target", _int_parser(1, MAX_DAILY_TARGET, "contacts a day"), None
        ),
        "locale": section.read("locale", _parse_locale, DEFAULT_LOCALE),
        "brand": section.read("brand", _parse_brand, None),
        "messages": _nested(
            section, "messages", "locale -> texts, e.g. {en: {sms: ...}}", _read_messages, {}
        ),
        "slack_channel": section.read("slack_channel", _parse_slack_channel, None),
        "follow_up": section.read("follow_up", _parse_follow_up, ("detractor",)),
    }


def _nested(campaign: _Section, key: str, what: str, read: Callable[[_Section], T], default: D) -> T | D:
    """Read the mapping under ``key`` with ``read``; any problem inside marks ``key`` as failed."""
    section = campaign.child(key, what)
    if section is None:
        return default
    before = len(campaign.report.problems)
    value = read(section)
    if len(campaign.report.problems) > before:
        campaign.failed.add(key)
        return default
    return value


def _check_combinations(section: _Section, kind: CampaignKind | None, values: dict[str, Any]) -> None:
    """Rules between fields: what needs an event, and a reminder that must come before expiry."""
    if kind is CampaignKind.TRANSACTIONAL and values["event"] is None and section.valid("event"):
        section.fail(
            "event",
            "is required for a transactional campaign (the event that triggers it, e.g. order_delivered)",
        )
    if values["event"] is None and section.valid("event"):
        for key in ("delay", "dedupe_days"):
            if section.given(key):
                section.fail(key, "only applies to a campaign with an 'event'")
    remind, expires = values["remind_after"], values["expires_after"]
    if remind is not None and section.valid("remind_after", "expires_after") and remind >= expires:
        section.fail(
            "remind_after",
            f"({format_duration(remind)}) must be shorter than expires_after ({format_duration(expires)}); "
            "a reminder after expiry would never be sent",
        )


# --- scalar fields ------------------------------------------------------------------------------------------


def _text(value: object, what: str) -> str:
    """Stripped, non-empty text; whole numbers are accepted as text (``name: 2025`` means "2025")."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Reject(f"must be {what}, not {_describe(value)}")
    text = value.strip()
    if not text:
        raise _Reject("is empty")
    return text


def _slug_hint(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:MAX_NAME_LENGTH]
    return f", e.g. '{slug}'" if slug and slug != text else ""


def _check_length(text: str) -> None:
    if len(text) > MAX_NAME_LENGTH:
        raise _Reject(f"is too long ({len(text)} characters; at most {MAX_NAME_LENGTH})")


def _parse_name(value: object) -> str:
    text = _text(value, "text")
    _check_length(text)
    if not NAME_RE.fullmatch(text):
        raise _Reject(
            f"{_quote(text)} is not a valid name: use 1-{MAX_NAME_LENGTH} lowercase letters (a-z), digits, "
            f"'-' or '_'{_slug_hint(text)}"
        )
    return text


def _parse_event(value: object) -> str:
    text = _text(value, "an event name")
    _check_length(text)
    if not EVENT_RE.fullmatch(text):
        raise _Reject(
            f"{_quote(text)} is not a valid event name: use 1-100 lowercase letters (a-z), digits, '_', '-' or "
            f"'.'{_slug_hint(text)}"
        )
    return text


def _parse_kind(value: object) -> CampaignKind:
    text = _text(value, "relationship or transactional").lower()
    try:
        return CampaignKind(text)
    except ValueError:
        hint = _did_you_mean(text, CampaignKind)
        raise _Reject(f"{_quote(text)} is not a kind; use relationship or transactional{hint}") from None


def _int_parser(low: int, high: int, unit: str) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Reject(f"must be a whole number of {unit}, not {_describe(value)}")
        if not low <= value <= high:
            raise _Reject(f"must be from {low} to {high} {unit}, not {value}")
        return value

    return parse


_DURATION_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
}
_UNIT_WORDS = {
    "w": ("w", "wk", "week", "weeks"),
    "d": ("d", "day", "days"),
    "h": ("h", "hr", "hour", "hours"),
    "m": ("m", "min", "mins", "minute", "minutes"),
}
_UNIT_OF = {word: unit for unit, words in _UNIT_WORDS.items() for word in words}
_DURATION_PART = re.compile(r"\s*(\d+)\s*([a-z]+)\s*")
_DURATION_HELP = (
    "use a number with a unit: 30m, 12h, 3d or 2w (combinations such as 1d12h work), or whole days"
)


def parse_duration(value: object) -> timedelta:
    """A duration from a campaign file: "14d", "12h", "30m", "1w", "1d 12h", or a whole number of days.

    Raises ValueError with a message that says how to write one.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a duration must not be negative; {_DURATION_HELP}")
        return timedelta(days=value)
    if not isinstance(value, str):
        raise ValueError(f"must be a duration, not {_describe(value)}; {_DURATION_HELP}")
    text = value.strip().lower()
    if text.isdigit():
        return timedelta(days=int(text))
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(f"{number}{unit}" for number, unit in parts) != re.sub(r"\s+", "", text):
        raise ValueError(f"{_quote(value)} is not a duration; {_DURATION_HELP}")
    total = timedelta(0)
    for number, word in parts:
        if word not in _UNIT_OF:
            raise ValueError(f"{_quote(value)} is not a duration ('{word}' is not a unit); {_DURATION_HELP}")
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


def _duration_parser(*, allow_zero: bool) -> Callable[[object], timedelta]:
    def parse(value: object) -> timedelta:
        try:
            duration = parse_duration(value)
        except (ValueError, OverflowError) as exc:
            raise _Reject(str(exc)) from None
        if duration > timedelta(days=MAX_DAYS):
            raise _Reject(f"{_quote(value)} is too long (at most {MAX_DAYS} days)")
        if not allow_zero and duration <= timedelta(0):
            raise _Reject("must be longer than 0")
        return duration

    return parse


_NEVER = ("never", "none", "no", "off")


def _parse_reminder(value: object) -> timedelta | None:
    """remind_after: a duration, or null / false / "never" for no reminder."""
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() in _NEVER:
        return None
    if value is True:
        raise _Reject("must be a duration such as 3d, or never")
    return _duration_parser(allow_zero=False)(value)


def _parse_channels(value: object) -> tuple[Channel, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise _Reject(f"must be a list such as [sms, email], not {_describe(value)}")
    if not items:
        raise _Reject("must name at least one channel (sms, email)")
    channels: list[Channel] = []
    for item in items:
        channel = _parse_channel(item)
        if channel in channels:
            raise _Reject(f"lists '{channel}' twice; each channel is tried once, in the order given")
        channels.append(channel)
    return tuple(channels)


def _parse_channel(item: object) -> Channel:
    text = _text(item, "a channel name (sms or email)").lower()
    try:
        return Channel(text)
    except ValueError:
        raise _Reject(
            f"{_quote(text)} is not a channel; use sms or email{_did_you_mean(text, Channel)}"
        ) from None


def _did_you_mean(text: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(text, [str(choice) for choice in choices], n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


@functools.cache
def _zones_by_folded_name() -> dict[str, str]:
    """Every IANA zone name keyed without case (reading the tz database is slow, so once)."""
    return {name.casefold(): name for name in zoneinfo.available_timezones() | {"UTC"}}


def _parse_timezone(value: object) -> str:
    text = _text(value, "an IANA time zone such as Europe/Berlin")
    name = _zones_by_folded_name().get(text.casefold())
    try:
        zoneinfo.ZoneInfo(name or text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _Reject(
            f"{_quote(text)} is not an IANA time zone (e.g. Europe/Berlin, America/New_York)"
        ) from None
    return name or text


# Same shape as contact locales: language, optional Script, optional REGION; "_" is read as "-".
_LOCALE_RE = re.compile(r"([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|[0-9]{3}))?")


def normalise_locale(text: str) -> str | None:
    """A locale in canonical BCP 47 case ("pt_br" -> "pt-BR", "zh-hans" -> "zh-Hans"), None when invalid."""
    match = _LOCALE_RE.fullmatch(text.strip())
    if match is None:
        return None
    language, script, region = match.groups()
    return "-".join(
        part for part in (language.lower(), script and script.title(), region and region.upper()) if part
    )


def _parse_locale(value: object) -> str:
    text = _text(value, "a locale such as en or pt-BR")
    locale = normalise_locale(text)
    if locale is None:
        raise _Reject(f"{_quote(text)} is not a locale; use a language code such as en, de or pt-BR")
    return locale


def _parse_sample_rate(value: object) -> float:
    """A fraction in (0, 1]; "25%" is accepted because that is how people say it."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            raise _Reject(f"{_quote(value)} is not a percentage") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Reject(f"must be a number between 0 and 1 (e.g. 0.25 or '25%'), not {_describe(value)}")
    if not 0 < value <= 1:
        raise _Reject(f"must be more than 0 and at most 1 (e.g. 0.25 or '25%'), not {value}")
    return float(value)


_SLACK_CHANNEL = re.compile(r"[CG][A-Z0-9]{6,20}")
_CATEGORIES = ("detractor", "passive", "promoter")


def _parse_slack_channel(value: object) -> str:
    text = _text(value, "a Slack channel id")
    if not _SLACK_CHANNEL.fullmatch(text):
        raise _Reject(
            f"{_quote(text)} is not a Slack channel id; use the id (e.g. C0123ABCDEF, from the channel's details), "
            "not its name"
        )
    return text


def _parse_follow_up(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise _Reject(f"must be a list such as [detractor, passive], not {_describe(value)}")
    found = []
    for item in items:
        text = _text(item, "a category").lower().rstrip("s")
        if text not in _CATEGORIES:
            raise _Reject(f"{_quote(text)} is not a category; use detractor, passive or promoter")
        found.append(text)
    return tuple(c for c in _CATEGORIES if c in found or c == "detractor")


def _parse_brand(value: object) -> str:
    text = _text(value, "text")
    if len(text) > MAX_BRAND_LENGTH:
        raise _Reject(f"is too long ({len(text)} characters; at most {MAX_BRAND_LENGTH})")
    return text


# --- send window --------------------------------------------------------------------------------------------

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


def _read_send_window(section: _Section) -> SendWindow:
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
        raise _Reject(f"must be a list of days such as [mon, tue, wed, thu], not {_describe(value)}")
    days: set[int] = set()
    for item in items:
        days |= _parse_day_item(item)
    if not days:
        raise _Reject(f"must name at least one day; {_DAYS_HELP}")
    return frozenset(days)


def _parse_day_item(item: object) -> frozenset[int]:
    text = " ".join(_text(item, "a day name").lower().split())
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
    raise _Reject(f"{_quote(text)} is not a day; {_DAYS_HELP}")


_TIME_RE = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def _parse_time(value: object) -> time:
    if not isinstance(value, str):
        raise _Reject(f'must be a time such as "09:00" (24-hour HH:MM), not {_describe(value)}')
    match = _TIME_RE.fullmatch(value.strip())
    if match is None:
        raise _Reject(f'{_quote(value)} is not a time; use 24-hour HH:MM such as "09:00" or "17:30"')
    return time(int(match.group(1)), int(match.group(2)))


# --- audience -----------------------------------------------------------------------------------------------


_AUDIENCE_HELP = "property filters such as {plan: [pro, enterprise], region: EU}"


def _read_audience(section: _Section) -> Audience:
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


def _read_filter(section: _Section, key: str) -> tuple[str, ...] | None:
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
        raise _Reject("is an empty list, which no contact matches; remove the filter or list values")
    texts = []
    for item in items:
        if item is None or isinstance(item, Mapping | list):
            raise _Reject(
                f"values must be text or numbers, not {_describe(item) if item is not None else 'null'}"
            )
        text = ("true" if item else "false") if isinstance(item, bool) else str(item).strip()
        if not text:
            raise _Reject("contains an empty value, which no contact matches")
        texts.append(text)
    return tuple(texts)


def _read_created_at(audience: _Section) -> tuple[datetime | None, datetime | None]:
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
    text = _text(value, "a date such as 2026-01-01 or a date-time such as 2026-01-01T09:00:00+01:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Reject(
            f"{_quote(text)} is not a date; use 2026-01-01 or an ISO date-time such as 2026-01-01T09:00:00+01:00"
        ) from None
    return _as_utc(moment).astimezone(UTC)


# --- messages -----------------------------------------------------------------------------------------------

# A campaign may set any key of the message catalogue, per locale (see campaigns.messages.texts.campaign_text).
_SUBJECT_FIELDS = ("email_subject", "email_reminder_subject")
# Texts sent by SMS: their length is checked when the campaign texts by SMS.
_SMS_FIELDS = (
    "sms",
    "sms_reminder",
    "ask_comment",
    "thank_you",
    "thank_you_late",
    "clarify",
    "help",
    "opted_out",
    "opted_in",
)
# Texts for people no campaign reaches (a number never surveyed, an unknown link): a campaign's is never used.
_NO_CAMPAIGN_KEYS = ("unknown_number", "page_unknown")
# Variables some texts get besides the contact's (see service/templates); validation renders with these too.
_KEY_VARIABLES: dict[str, dict[str, object]] = {
    "page_score_confirm": {"score": 7},
    "page_unsubscribe_confirm": {"address": "a•••@example.com"},
}
_TEXTS_HINT = "catalogue keys such as sms, email_subject, ask_comment or page_thanks"
_TEXTS_LISTING = "a campaign can set the keys of campaigns/catalogue/en.yaml"


def _read_messages(section: _Section) -> dict[str, MessageTexts]:
    messages: dict[str, MessageTexts] = {}
    for key in section.data:
        locale = normalise_locale(str(key)) if isinstance(key, str) else None
        if locale is None:
            section.fail(
                str(key), f"{_quote(key)} is not a locale; use a language code such as en, de or pt-BR"
            )
        elif locale in messages:
            section.fail(str(key), f"locale '{locale}' is given twice")
        else:
            texts = _read_locale_texts(section, key)
            if texts is not None:
                messages[locale] = texts
    return messages


def _read_locale_texts(messages: _Section, key: str) -> MessageTexts | None:
    section = messages.child(key, _TEXTS_HINT)
    if section is None:
        if key not in messages.failed:
            messages.fail(key, f"must be a mapping of texts ({_TEXTS_HINT})")
        return None
    section.check_keys(CATALOGUE_KEYS, _TEXTS_LISTING)
    values = {
        name: section.read(name, _template_parser(name), None)
        for name in CATALOGUE_KEYS
        if name in section.data
    }
    return MessageTexts.from_mapping(values)


def _template_parser(name: str) -> Callable[[object], str]:
    """Checks for what can never work: not text, empty, a syntax error, a sandbox refusal, a two-line subject."""

    def parse(value: object) -> str:
        if not isinstance(value, str):
            raise _Reject(f"must be text (a template), not {_describe(value)}")
        if not value.strip():
            raise _Reject("is empty; remove it to use the shipped text")
        problem = template_syntax_problem(value)
        if problem is not None:
            raise _Reject(problem)
        sample = _render_sample(value, name)
        if isinstance(sample, TemplateProblem) and sample.security:
            raise _Reject(sample.message)
        if name in _SUBJECT_FIELDS and isinstance(sample, str) and "\n" in sample:
            raise _Reject("an email subject must be one line")
        return value

    return parse


def _render_sample(source: str, name: str) -> str | TemplateProblem:
    try:
        return render(source, {**SAMPLE_VARIABLES, **_KEY_VARIABLES.get(name, {})})
    except TemplateProblem as problem:
        return problem


def _check_texts(campaign: _Section, values: dict[str, Any]) -> None:
    """Warnings about valid texts: too many SMS segments, failures without properties, missing translations."""
    if campaign.failed:
        return  # the campaign is rejected anyway; warnings would only add noise to its problems
    for locale, texts in values["messages"].items():
        for name, source in texts.as_mapping().items():
            path = campaign.at(f"messages.{locale}.{name}")
            if name in _NO_CAMPAIGN_KEYS:
                campaign.report.warn(
                    path,
                    "is never used: this text goes to people no campaign surveyed, so the shipped one is sent",
                )
                continue
            _warn_rendered(path, name, source, values["channels"], campaign.report)
    _warn_missing_texts(campaign, values)


def _warn_rendered(path: str, name: str, source: str, channels: tuple[Channel, ...], report: _Report) -> None:
    text = _render_sample(source, name)
    if isinstance(text, TemplateProblem):
        report.warn(path, f"cannot be rendered for a contact without the properties it uses ({text.message})")
        return
    if name in _SMS_FIELDS and Channel.SMS in channels:
        count, encoding = sms_segments(text)
        if count > MAX_SMS_SEGMENTS:
            report.warn(
                path,
                f"renders to {count} SMS segments ({encoding}, {len(text)} characters); "
                f"keep it within {MAX_SMS_SEGMENTS}",
            )


def _used_fields(values: dict[str, Any]) -> list[str]:
    """The text fields this campaign will actually send, given its channels and reminder."""
    reminding = values["remind_after"] is not None
    used = []
    if Channel.SMS in values["channels"]:
        used += ["sms", *(["sms_reminder"] if reminding else [])]
    if Channel.EMAIL in values["channels"]:
        used += ["email_subject", "email_intro", *(["email_reminder_subject"] if reminding else [])]
    return used


def _warn_missing_texts(campaign: _Section, values: dict[str, Any]) -> None:
    """Warn where contacts would get texts in another language than the one the campaign names."""
    messages: dict[str, MessageTexts] = values["messages"]
    default = values["locale"]
    shipped = list(SHIPPED_TEXTS)
    if resolve_locale(default, shipped) is None and resolve_locale(default, list(messages)) is None:
        campaign.report.warn(
            campaign.at("locale"),
            f"there are no texts for '{default}' (none in messages, none shipped); contacts will get the "
            "English texts",
        )
    for locale, texts in messages.items():
        if resolve_locale(locale, shipped) is not None:
            continue
        missing = [name for name in _used_fields(values) if getattr(texts, name) is None]
        if missing:
            campaign.report.warn(
                campaign.at(f"messages.{locale}"),
                f"has no {' or '.join(missing)}, and no texts are shipped for '{locale}'; contacts with this "
                f"locale get those in the default locale ({default}) or English",
            )


# --- JSON ---------------------------------------------------------------------------------------------------


def definition_to_json(definition: CampaignDefinition) -> dict[str, Any]:
    """A JSON-ready dict of a definition; :func:`definition_from_json` gives back an equal one.

    Durations are seconds, times "HH:MM", weekdays 0 (Monday) to 6, instants ISO 8601 with offset, and
    "messages" is locale -> {catalogue key: template}, as in the campaign file. The "version" key lets a later
    release read definitions stored by this one. Campaign texts beyond the five survey texts were added to
    "messages" without a new version: the shape is unchanged, older definitions simply have fewer keys, and a
    definition without such texts is stored exactly as before (so applying an unchanged file stays "unchanged").
    """
    d = definition
    return {
        "version": JSON_VERSION,
        "name": d.name,
        "kind": d.kind.value,
        "event": d.event,
        "delay_seconds": _seconds(d.delay),
        "interval_days": d.interval_days,
        "first_after_days": d.first_after_days,
        "dedupe_days": d.dedupe_days,
        "min_days_between_surveys": d.min_days_between_surveys,
        "audience": _audience_to_json(d.audience),
        "channels": [channel.value for channel in d.channels],
        "send_window": _window_to_json(d.send_window),
        "timezone": d.timezone,
        "remind_after_seconds": None if d.remind_after is None else _seconds(d.remind_after),
        "expires_after_seconds": _seconds(d.expires_after),
        "sample_rate": d.sample_rate,
        "daily_target": d.daily_target,
        "locale": d.locale,
        "brand": d.brand,
        "messages": {locale: _texts_to_json(texts) for locale, texts in d.messages.items()},
        # Written only when set, so that definitions stored before these fields existed compare unchanged.
        **({"slack_channel": d.slack_channel} if d.slack_channel else {}),
        **({"follow_up": list(d.follow_up)} if d.follow_up != ("detractor",) else {}),
    }


def definition_from_json(data: Mapping[str, Any]) -> CampaignDefinition:
    """The definition stored by :func:`definition_to_json`; ValueError for an unknown version."""
    if data.get("version") != JSON_VERSION:
        raise ValueError(f"unsupported campaign definition version {data.get('version')!r}")
    remind = data["remind_after_seconds"]
    return CampaignDefinition(
        name=data["name"],
        kind=CampaignKind(data["kind"]),
        event=data["event"],
        delay=timedelta(seconds=data["delay_seconds"]),
        interval_days=data["interval_days"],
        first_after_days=data["first_after_days"],
        dedupe_days=data["dedupe_days"],
        min_days_between_surveys=data["min_days_between_surveys"],
        audience=_audience_from_json(data["audience"]),
        channels=tuple(Channel(channel) for channel in data["channels"]),
        send_window=_window_from_json(data["send_window"]),
        timezone=data["timezone"],
        remind_after=None if remind is None else timedelta(seconds=remind),
        expires_after=timedelta(seconds=data["expires_after_seconds"]),
        sample_rate=float(data["sample_rate"]),
        daily_target=data["daily_target"],
        locale=data["locale"],
        brand=data["brand"],
        messages={locale: _texts_from_json(texts) for locale, texts in data["messages"].items()},
        slack_channel=data.get("slack_channel"),
        follow_up=tuple(data.get("follow_up", ("detractor",))),
    )


def _seconds(duration: timedelta) -> int | float:
    """Whole seconds as an int (every duration a campaign file can express), anything finer as a float."""
    seconds = duration.total_seconds()
    return int(seconds) if seconds.is_integer() else seconds


def _audience_to_json(audience: Audience) -> dict[str, Any]:
    return {
        "properties": {key: list(values) for key, values in audience.properties.items()},
        "created_before": audience.created_before.isoformat() if audience.created_before else None,
        "created_after": audience.created_after.isoformat() if audience.created_after else None,
    }


def _audience_from_json(data: Mapping[str, Any]) -> Audience:
    before, after = data["created_before"], data["created_after"]
    return Audience(
        properties={key: tuple(values) for key, values in data["properties"].items()},
        created_before=datetime.fromisoformat(before) if before else None,
        created_after=datetime.fromisoformat(after) if after else None,
    )


def _window_to_json(window: SendWindow) -> dict[str, Any]:
    return {"days": sorted(window.days), "start": _clock(window.start), "end": _clock(window.end)}


def _clock(moment: time) -> str:
    return moment.isoformat(timespec="minutes" if not (moment.second or moment.microsecond) else "auto")


def _window_from_json(data: Mapping[str, Any]) -> SendWindow:
    return SendWindow(
        days=frozenset(data["days"]),
        start=time.fromisoformat(data["start"]),
        end=time.fromisoformat(data["end"]),
    )


def _texts_to_json(texts: MessageTexts) -> dict[str, str]:
    """One locale's texts as a flat key -> source mapping, the shape of the campaign file."""
    return texts.as_mapping()


def _texts_from_json(data: Mapping[str, str]) -> MessageTexts:
    """Reads what :func:`_texts_to_json` wrote, including definitions stored before campaigns could set more
    than the five survey texts. A key the catalogue no longer has is kept (and never looked up)."""
    return MessageTexts.from_mapping(data)
