"""The ``messages`` of a campaign file: any catalogue key per locale, checked as templates, with warnings.

What can never work is a problem (not text, a syntax error, a sandbox refusal, a two-line subject); what may
disappoint is a warning (an SMS over two segments, a text that needs properties some contacts lack, a locale
whose contacts would get texts in another language). How the texts are then used: :mod:`campaigns.messages.texts`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from campaigns.definitions.problems import Reject, Report, Section, describe, quote
from campaigns.messages.catalogue import KEYS as CATALOGUE_KEYS
from campaigns.messages.catalogue import SHIPPED_TEXTS, MessageTexts, catalogue
from campaigns.messages.locales import normalise_locale, resolve_locale
from campaigns.messages.optout import says_how_to_opt_out
from campaigns.messages.templates import (
    SAMPLE_VARIABLES,
    TemplateProblem,
    render,
    sms_segments,
    template_names,
    template_syntax_problem,
)
from storage.enums import Channel

__all__ = ["check_texts", "read_messages"]

MAX_SMS_SEGMENTS = 2


# A campaign may set any key of the message catalogue, per locale (see campaigns.messages.texts).
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
    "follow_up_detractor",
    "follow_up_passive",
    "follow_up_promoter",
    "closing_detractor",
    "closing_detractor_contact",
    "closing_passive",
    "closing_promoter",
    "closing_promoter_link",
)
# Texts for people no campaign reaches (a number never surveyed, an unknown link): a campaign's is never used.
_NO_CAMPAIGN_KEYS = ("unknown_number", "page_unknown")
# Variables some texts get besides the contact's (see service/templates); validation renders with these too.
_KEY_VARIABLES: dict[str, dict[str, object]] = {
    "page_score_confirm": {"score": 7},
    "page_unsubscribe_confirm": {"address": "a•••@example.com"},
    **{
        key: {"promoter_link": "https://g.page/r/CabcdefghijklmnoEAI/review"}
        for key in ("closing_promoter_link", "closing_promoter", "thank_you", "page_thanks")
    },
}
# What every template gets whatever the contact (campaigns.messages.templates.template_variables).
BUILT_IN_VARIABLES = frozenset(SAMPLE_VARIABLES)
_TEXTS_HINT = "catalogue keys such as sms, email_subject, ask_comment or page_thanks"
_TEXTS_LISTING = "a campaign can set the keys of campaigns/catalogue/en.yaml"


def read_messages(section: Section) -> dict[str, MessageTexts]:
    messages: dict[str, MessageTexts] = {}
    for key in section.data:
        locale = normalise_locale(str(key)) if isinstance(key, str) else None
        if locale is None:
            section.fail(
                str(key), f"{quote(key)} is not a locale; use a language code such as en, de or pt-BR"
            )
        elif locale in messages:
            section.fail(str(key), f"locale '{locale}' is given twice")
        else:
            texts = _read_locale_texts(section, key)
            if texts is not None:
                messages[locale] = texts
    return messages


def _read_locale_texts(messages: Section, key: str) -> MessageTexts | None:
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
            raise Reject(f"must be text (a template), not {describe(value)}")
        if not value.strip():
            raise Reject("is empty; remove it to use the shipped text")
        problem = template_syntax_problem(value)
        if problem is not None:
            raise Reject(problem)
        sample = _render_sample(value, name)
        if isinstance(sample, TemplateProblem) and sample.security:
            raise Reject(sample.message)
        if name in _SUBJECT_FIELDS and isinstance(sample, str) and "\n" in sample:
            raise Reject("an email subject must be one line")
        return value

    return parse


def _render_sample(source: str, name: str) -> str | TemplateProblem:
    try:
        return render(source, {**SAMPLE_VARIABLES, **_KEY_VARIABLES.get(name, {})})
    except TemplateProblem as problem:
        return problem


def check_texts(campaign: Section, values: dict[str, Any]) -> None:
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
            if name == "sms" and Channel.SMS in values["channels"]:
                _warn_no_opt_out(
                    path,
                    source,
                    texts.get("sms_opt_out") or catalogue(locale)["sms_opt_out"],
                    campaign.report,
                )
            _check_variables(path, name, source, campaign.report)
        _warn_promoter_link(campaign, locale, texts, values)
    _warn_missing_texts(campaign, values)


def _warn_promoter_link(campaign: Section, locale: str, texts: MessageTexts, values: dict[str, Any]) -> None:
    """Warn where the campaign's own texts would keep its promoter_link from promoters' SMS closing, or where a
    text for the link can never be sent (:mod:`campaigns.messages.per_category`)."""
    own = texts.as_mapping()
    if values["promoter_link"] is None:
        if "closing_promoter_link" in own:
            campaign.report.warn(
                campaign.at(f"messages.{locale}.closing_promoter_link"),
                "is never used: the campaign has no promoter_link",
            )
        return
    if Channel.SMS not in values["channels"]:
        return  # the page shows the link as a button whatever its texts say
    if "closing_promoter_link" in own:
        if "promoter_link" not in template_names(own["closing_promoter_link"]):
            campaign.report.warn(
                campaign.at(f"messages.{locale}.closing_promoter_link"),
                "does not use {{ promoter_link }}: promoters' SMS closing will not carry the link",
            )
        return
    name = next((key for key in ("closing_promoter", "thank_you") if key in own), None)
    if name is not None and "promoter_link" not in template_names(own[name]):
        campaign.report.warn(
            campaign.at(f"messages.{locale}.{name}"),
            "is sent to promoters by SMS instead of the shipped text with the promoter_link; set "
            "closing_promoter_link too, or use {{ promoter_link }} in it",
        )


def _check_variables(path: str, name: str, source: str, report: Report) -> None:
    """A variable that is not built in and that no contact has is a typo ("{{ frist_name }}"): a problem.

    Checked only when the caller knows the contacts' properties (`campaigns apply`); the file's top-level
    ``properties: [...]`` declares those of contacts not imported yet.
    """
    if report.known_properties is None:
        return
    known = BUILT_IN_VARIABLES | _KEY_VARIABLES.get(name, {}).keys() | report.known_properties
    for variable in sorted(template_names(source) - known):
        close = difflib.get_close_matches(variable, sorted(known), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        report.problem(
            path,
            f"uses '{variable}', which no contact has{hint}; built in are {', '.join(sorted(BUILT_IN_VARIABLES))}; "
            f"declare a property of contacts not imported yet in the file's top-level 'properties: [...]'",
        )


def _warn_rendered(path: str, name: str, source: str, channels: tuple[Channel, ...], report: Report) -> None:
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


def _warn_no_opt_out(path: str, source: str, instruction: str, report: Report) -> None:
    """An invitation that does not say how to stop gets the instruction appended when it is a number's first."""
    text = _render_sample(source, "sms")
    if isinstance(text, str) and not says_how_to_opt_out(text, instruction):
        report.warn(
            path,
            f"does not say how to opt out (STOP); the first message to each number gets {quote(instruction)}",
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


def _warn_missing_texts(campaign: Section, values: dict[str, Any]) -> None:
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
