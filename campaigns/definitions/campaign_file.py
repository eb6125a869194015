"""Campaign files: parse and validate the YAML that `nps campaigns apply` reads.

Every problem of a file is reported at once, each with the path of the field it is about
(``campaigns[1] (post-delivery).send_window.start``), so an admin can fix a file in one pass
(:mod:`campaigns.definitions.problems`). How the fields combine is the contract of
:mod:`campaigns.definitions.model`; the YAML is read with YAML 1.2 scalars (:mod:`campaigns.definitions.yaml_loader`).
The fields are parsed by :mod:`~campaigns.definitions.fields`, :mod:`~campaigns.definitions.send_window`,
:mod:`~campaigns.definitions.audience` and :mod:`~campaigns.definitions.messages`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from campaigns.definitions.audience import AUDIENCE_HELP, read_audience
from campaigns.definitions.fields import (
    MAX_DAILY_TARGET,
    MAX_DAYS,
    duration_parser,
    format_duration,
    int_parser,
    parse_brand,
    parse_channels,
    parse_event,
    parse_flag,
    parse_follow_up,
    parse_kind,
    parse_link,
    parse_locale,
    parse_name,
    parse_reminder,
    parse_sample_rate,
    parse_slack_channel,
    parse_timezone,
)
from campaigns.definitions.messages import check_texts, read_messages
from campaigns.definitions.model import (
    DEFAULT_CHANNELS,
    DEFAULT_DEDUPE_DAYS,
    DEFAULT_EXPIRES_AFTER,
    DEFAULT_INTERVAL_DAYS,
    DEFAULT_REMIND_AFTER,
    Audience,
    CampaignDefinition,
    SendWindow,
)
from campaigns.definitions.problems import (
    CampaignFileError,
    ParsedFile,
    Report,
    Section,
    describe,
    unknown_key_message,
)
from campaigns.definitions.recovery import read_recovery
from campaigns.definitions.send_window import read_send_window
from campaigns.definitions.yaml_loader import load_yaml
from campaigns.messages.locales import FALLBACK_LOCALE
from storage.enums import CampaignKind

__all__ = ["parse_campaign_file"]

T = TypeVar("T")
D = TypeVar("D")  # the type of a default, which may differ from the parsed type (e.g. None)


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
    "promoter_link",
    "anonymous",
    "recovery",
)


def parse_campaign_file(text: str, *, known_properties: Collection[str] | None = None) -> ParsedFile:
    """Parse and validate a campaign file; CampaignFileError lists every problem of it.

    With ``known_properties`` (what `campaigns apply` passes: the property names stored contacts have), a
    template variable that is neither built in, nor one of them, nor declared in the file's top-level
    ``properties: [...]`` is a problem ("{{ frist_name }}"), instead of an empty string at send time.
    """
    document = load_yaml(text)
    report = Report()
    if known_properties is not None:
        report.known_properties = frozenset(known_properties) | _declared_properties(document, report)
    campaigns = _read_document(document, report)
    if report.problems:
        raise CampaignFileError(report.problems)
    return ParsedFile(campaigns, report.warnings)


def _read_document(document: object, report: Report) -> list[CampaignDefinition]:
    if document is None:
        report.problem("", "the file is empty; it needs a 'campaigns:' list")
        return []
    if not isinstance(document, Mapping):
        report.problem("", f"the file must be a mapping with a 'campaigns:' list, not {describe(document)}")
        return []
    for key in document:
        if key not in ("campaigns", "properties"):
            report.problem(str(key), unknown_key_message(key, ["campaigns", "properties"]))
    items = document.get("campaigns")
    if not isinstance(items, list) or not items:
        what = "missing" if items is None else f"{describe(items)}"
        report.problem("campaigns", f"must be a non-empty list of campaigns ({what})")
        return []
    return _read_campaigns(items, report)


def _declared_properties(document: object, report: Report) -> frozenset[str]:
    """The top-level ``properties: [plan, product]``: contact properties templates may use before any import."""
    declared = document.get("properties") if isinstance(document, Mapping) else None
    if declared is None:
        return frozenset()
    if not isinstance(declared, list) or not all(isinstance(name, str) for name in declared):
        report.problem("properties", f"must be a list of property names, not {describe(declared)}")
        return frozenset()
    return frozenset(declared)


def _read_campaigns(items: list[object], report: Report) -> list[CampaignDefinition]:
    campaigns: list[CampaignDefinition] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        path = f"campaigns[{index}]"
        if not isinstance(item, Mapping):
            report.problem(path, f"must be a mapping of fields (name, kind, ...), not {describe(item)}")
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


def _read_name(item: Mapping[Any, object], path: str, report: Report) -> str | None:
    section = Section(item, path, report)
    return section.require("name", parse_name, "a unique lowercase slug such as quarterly-pulse")


def _read_campaign(
    item: Mapping[Any, object], path: str, name: str | None, report: Report
) -> CampaignDefinition | None:
    """One campaign, or None when it has problems (all of them reported)."""
    before = len(report.problems)
    section = Section(item, path, report)
    section.check_keys(_CAMPAIGN_FIELDS)
    kind = section.require("kind", parse_kind, "relationship or transactional")
    values = _read_fields(section, kind)
    _check_combinations(section, kind, values)
    check_texts(section, values)
    if len(report.problems) > before or name is None or kind is None:
        return None
    return CampaignDefinition(name=name, kind=kind, **values)


def _read_fields(section: Section, kind: CampaignKind | None) -> dict[str, Any]:
    """Every field except name and kind, defaults applied; problems go to the section's report."""
    relationship = kind is CampaignKind.RELATIONSHIP
    return {
        "event": section.read("event", parse_event, None),
        "delay": section.read("delay", duration_parser(allow_zero=True), timedelta(0)),
        "interval_days": section.read(
            "interval_days", int_parser(1, MAX_DAYS, "days"), DEFAULT_INTERVAL_DAYS if relationship else None
        ),
        "first_after_days": section.read("first_after_days", int_parser(0, MAX_DAYS, "days"), 0),
        "dedupe_days": section.read("dedupe_days", int_parser(0, MAX_DAYS, "days"), DEFAULT_DEDUPE_DAYS),
        "min_days_between_surveys": section.read(
            "min_days_between_surveys", int_parser(0, MAX_DAYS, "days"), None
        ),
        "audience": _nested(section, "audience", AUDIENCE_HELP, read_audience, Audience()),
        "channels": section.read("channels", parse_channels, DEFAULT_CHANNELS),
        "send_window": _nested(section, "send_window", "days, start and end", read_send_window, SendWindow()),
        "timezone": section.read("timezone", parse_timezone, None),
        "remind_after": section.read(
            "remind_after", parse_reminder, DEFAULT_REMIND_AFTER, null_is_value=True
        ),
        "expires_after": section.read(
            "expires_after", duration_parser(allow_zero=False), DEFAULT_EXPIRES_AFTER
        ),
        "sample_rate": section.read("sample_rate", parse_sample_rate, 1.0),
        "daily_target": section.read("daily_target", int_parser(1, MAX_DAILY_TARGET, "contacts a day"), None),
        "locale": section.read("locale", parse_locale, FALLBACK_LOCALE),
        "brand": section.read("brand", parse_brand, None),
        "messages": _nested(section, "messages", "locale -> texts, e.g. {en: {sms: ...}}", read_messages, {}),
        "slack_channel": section.read("slack_channel", parse_slack_channel, None),
        "follow_up": section.read("follow_up", parse_follow_up, ("detractor",)),
        "promoter_link": section.read("promoter_link", parse_link, None),
        "anonymous": section.read("anonymous", parse_flag, False),
        "recovery_after_days": read_recovery(section),
    }


def _nested(campaign: Section, key: str, what: str, read: Callable[[Section], T], default: D) -> T | D:
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


def _check_combinations(section: Section, kind: CampaignKind | None, values: dict[str, Any]) -> None:
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
    if values["min_days_between_surveys"] == 0:
        section.report.warn(
            section.at("min_days_between_surveys"),
            "is 0: this campaign ignores the fatigue rule and may survey a contact again as soon as it plans "
            "to (NPS_MIN_DAYS_BETWEEN_SURVEYS does not apply to it)",
        )
    if values["anonymous"] and values["recovery_after_days"] and section.valid("anonymous", "recovery"):
        section.fail(
            "recovery",
            "cannot be used with 'anonymous: true': an anonymous campaign opens no follow-ups, so nothing would "
            "be resolved to survey again",
        )
    remind, expires = values["remind_after"], values["expires_after"]
    if remind is not None and section.valid("remind_after", "expires_after") and remind >= expires:
        section.fail(
            "remind_after",
            f"({format_duration(remind)}) must be shorter than expires_after ({format_duration(expires)}); "
            "a reminder after expiry would never be sent",
        )
