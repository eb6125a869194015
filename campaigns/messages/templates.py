"""Message texts: the shipped defaults per locale, locale fallback, sandboxed rendering and SMS segment counts.

Campaign templates are written by admins but rendered for every contact, with the contact's free properties
as variables, so they run in Jinja2's (immutable) sandbox: no attribute starting with "_", no mutation of the
variables, no access to Python internals. A variable that a contact does not have renders as an empty string,
and so does anything reached through it (``{{ missing.attribute.upper() }}``), because a contact without a
"plan" property must still get a sensible message, not an error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns.messages.catalogue import LOCALES, best_locale, locale_file, shipped_text

__all__ = [
    "ENVIRONMENT",
    "FALLBACK_LOCALE",
    "MESSAGE_FIELDS",
    "SAMPLE_VARIABLES",
    "SHIPPED_TEXTS",
    "MessageTexts",
    "TemplateProblem",
    "choose_locales",
    "locale_language",
    "render",
    "resolve_locale",
    "sms_segments",
    "template_syntax_problem",
    "template_variables",
    "text_sources",
    "texts_for",
]

# The last resort of every fallback chain; SHIPPED_TEXTS holds every field for it.
FALLBACK_LOCALE = "en"


# The five survey texts: what an invitation or reminder says. They are fields of their own because the dispatcher
# and the validation treat them specially (SMS length, one-line subjects, texts an unshipped locale must have).
MESSAGE_FIELDS: tuple[str, ...] = (
    "sms",
    "sms_reminder",
    "email_subject",
    "email_intro",
    "email_reminder_subject",
)


@dataclass(frozen=True)
class MessageTexts:
    """The Jinja2 sources of one locale's texts; None (or a key not in ``others``) means "not given, fall back".

    A campaign can set any key of the message catalogue (``campaigns/catalogue/en.yaml``): the five survey texts
    are fields, every other key (``ask_comment``, ``page_thanks``, ``question`` ...) is in ``others``. The email
    body with the eleven score links is built elsewhere; ``email_intro`` is the sentence or two above them.
    """

    sms: str | None = None
    sms_reminder: str | None = None
    email_subject: str | None = None
    email_intro: str | None = None
    email_reminder_subject: str | None = None
    others: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        survey = sorted(set(self.others).intersection(MESSAGE_FIELDS))
        if survey:
            raise ValueError(f"{', '.join(survey)} must be given as fields of MessageTexts, not in others")
        object.__setattr__(self, "others", dict(self.others))  # a copy: the caller's dict stays theirs

    @classmethod
    def from_mapping(cls, texts: Mapping[str, str | None]) -> MessageTexts:
        """The texts of a flat key -> source mapping, the shape of the file and the JSON; None: not given."""
        survey = {key: value for key, value in texts.items() if key in MESSAGE_FIELDS}
        others = {
            key: value for key, value in texts.items() if key not in MESSAGE_FIELDS and value is not None
        }
        return cls(**survey, others=others)

    def get(self, key: str) -> str | None:
        """The source this locale gives for catalogue key ``key``, or None."""
        if key in MESSAGE_FIELDS:
            value: str | None = getattr(self, key)
            return value
        return self.others.get(key)

    def as_mapping(self) -> dict[str, str]:
        """Every text given, key -> source: the survey texts in field order, then the others as given."""
        given = {name: getattr(self, name) for name in MESSAGE_FIELDS if getattr(self, name) is not None}
        return {**given, **self.others}


class TemplateProblem(Exception):
    """A template could not be compiled or rendered; ``message`` says why in one line.

    ``security`` is True when the sandbox refused something (an attempt to reach Python internals), which is
    never a matter of missing data and therefore always a mistake in the template itself.
    """

    def __init__(self, message: str, *, security: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.security = security


class _BlankUndefined(jinja2.ChainableUndefined):
    """Missing variables render as "" and stay chainable, even through calls; sandbox refusals still raise.

    The sandbox reports an unsafe attribute by returning an Undefined that carries SecurityError; printing,
    testing or iterating that one raises, so an escape attempt is reported instead of silently rendering "".
    """

    __slots__ = ()

    def _refused(self) -> bool:
        return self._undefined_exception is SecurityError

    def __str__(self) -> str:
        if self._refused():
            self._fail_with_undefined_error()
        return ""

    def __bool__(self) -> bool:
        if self._refused():
            self._fail_with_undefined_error()
        return False

    def __iter__(self) -> Any:
        if self._refused():
            self._fail_with_undefined_error()
        return iter(())

    def __call__(self, *args: object, **kwargs: object) -> _BlankUndefined:  # type: ignore[override]
        # `{{ plan.upper() }}` for a contact without a plan: the call yields the same blank.
        if self._refused():
            self._fail_with_undefined_error()
        return self


# One environment for the whole process: compiled templates are cached per source (see _compile).
ENVIRONMENT = ImmutableSandboxedEnvironment(
    autoescape=False,
    undefined=_BlankUndefined,
    keep_trailing_newline=False,
)

# The shipped survey texts of every locale, read from the message catalogue (campaigns/catalogue/<locale>.yaml),
# where translators edit them; the other keys are read through campaigns.messages.catalogue. A field the file leaves out
# or empty is None here and falls back like any other (see texts_for); English is complete. SMS invites and
# reminders stay within one GSM-7 segment for typical names where the script allows: their wording avoids
# letters outside the GSM alphabet (Spanish "número", Portuguese "você", "Olá"), since a single one switches the
# whole message to UCS-2 and 70-character segments. Chinese and Vietnamese are always UCS-2 and are kept within
# two segments even for long names. Every SMS says how to answer and how to opt out; STOP is kept in English
# everywhere because carriers and Twilio act on that keyword whatever the language.
SHIPPED_TEXTS: dict[str, MessageTexts] = {
    locale: MessageTexts.from_mapping({name: locale_file(locale).get(name) for name in MESSAGE_FIELDS})
    for locale in LOCALES
}


# --- locale choice ------------------------------------------------------------------------------------------


def _locale_key(locale: str) -> str:
    """Comparable form of a locale: case-insensitive, "_" and "-" alike ("pt_br" == "pt-BR")."""
    return locale.strip().replace("_", "-").casefold()


def locale_language(locale: str) -> str:
    """The language part of a locale, lower case ("pt-BR" -> "pt")."""
    return _locale_key(locale).split("-", 1)[0]


def resolve_locale(wanted: str, available: list[str]) -> str | None:
    """The entry of ``available`` that best serves ``wanted``, or None.

    Order: the exact locale ("pt-BR"), then its bare language ("pt"), then another variant of the same language
    ("pt-PT", the first in ``available`` order), because a Portuguese text is better than a foreign one. Chinese
    goes by script: "zh-TW", "zh-HK" and "zh-Hant-*" prefer "zh-Hant" and other Traditional variants; "zh",
    "zh-CN" and "zh-SG" prefer "zh-Hans" (see :func:`campaigns.messages.catalogue.best_locale`).
    """
    return best_locale(wanted, available)


def choose_locales(
    definition_messages: Mapping[str, MessageTexts], contact_locale: str | None, default_locale: str
) -> tuple[str, str]:
    """(chosen locale, default locale) for a contact, each spelled as the campaign or the catalogue spells it.

    The chosen locale is the first of: the contact's locale, the campaign's default locale, "en", each resolved
    by :func:`resolve_locale` against the locales the campaign has texts for plus the shipped ones (campaign
    locales first). So a "pt-BR" contact gets the campaign's "pt-BR" texts, else "pt", else shipped "pt". The
    default is the campaign's default locale resolved the same way, else "en".
    """
    available = [
        *definition_messages,
        *(locale for locale in SHIPPED_TEXTS if locale not in definition_messages),
    ]
    chosen = _first_resolved([contact_locale, default_locale, FALLBACK_LOCALE], available)
    default = resolve_locale(default_locale, available) or FALLBACK_LOCALE
    return chosen, default


def text_sources(
    definition_messages: Mapping[str, MessageTexts], contact_locale: str | None, default_locale: str, key: str
) -> list[tuple[str, bool]]:
    """Every source of catalogue key ``key`` for a contact, best first, each with "the campaign wrote it".

    With the locales of :func:`choose_locales`, the order is: the campaign's text for the chosen locale, the
    shipped text for the chosen locale, the campaign's text for its default locale, the shipped text for the
    default locale, the shipped English text. Sources that are not given are left out; the list is empty only
    for a key the catalogue does not have. "Shipped text for a locale" falls back per key to the locale's less
    specific shipped files, never to English (see :func:`campaigns.messages.catalogue.shipped_text`).
    """
    chosen, default = choose_locales(definition_messages, contact_locale, default_locale)
    return _sources(definition_messages, chosen, default, key)


def _sources(
    definition_messages: Mapping[str, MessageTexts], chosen: str, default: str, key: str
) -> list[tuple[str, bool]]:
    own_chosen, own_default = definition_messages.get(chosen), definition_messages.get(default)
    candidates = [
        (own_chosen.get(key) if own_chosen is not None else None, True),
        (shipped_text(chosen, key), False),
        (own_default.get(key) if own_default is not None else None, True),
        (shipped_text(default, key), False),
        (shipped_text(FALLBACK_LOCALE, key), False),
    ]
    return [(source, written) for source, written in candidates if source is not None]


def texts_for(
    definition_messages: Mapping[str, MessageTexts], contact_locale: str | None, default_locale: str
) -> tuple[str, MessageTexts]:
    """The locale chosen for a contact (:func:`choose_locales`) and its complete survey texts (every field set).

    Each field is the first of :func:`text_sources`: the campaign's text for the chosen locale, the shipped
    text for the chosen locale, the campaign's text for its default locale, the shipped text for the default
    locale, the shipped English text. A campaign can thus override only the SMS of a locale and keep the
    shipped email texts in the same language. :func:`campaigns.messages.texts.campaign_text` follows the same order for
    every other catalogue key.
    """
    chosen, default = choose_locales(definition_messages, contact_locale, default_locale)
    values = {name: _sources(definition_messages, chosen, default, name)[0][0] for name in MESSAGE_FIELDS}
    return chosen, MessageTexts.from_mapping(values)


def _first_resolved(candidates: list[str | None], available: list[str]) -> str:
    for candidate in candidates:
        if candidate:
            resolved = resolve_locale(candidate, available)
            if resolved is not None:
                return resolved
    return FALLBACK_LOCALE


# --- variables and rendering --------------------------------------------------------------------------------


def template_variables(
    name: str | None, properties: Mapping[str, object], brand: str | None, survey_url: str
) -> dict[str, object]:
    """Everything a template may use for one contact.

    Every property is a variable of its own (``{{ plan }}``); names that are not identifiers ("account
    manager") are reachable as ``{{ properties['account manager'] }}``. The built-in names win over
    properties of the same name, except ``company``, which *is* the contact's company property when set and
    falls back to the campaign's brand, so B2B campaigns name the customer's account and B2C ones the brand.
    """
    full_name = (name or "").strip()
    words = full_name.split()
    company = _text(properties.get("company")) or (brand or "").strip()
    variables: dict[str, object] = {key: value for key, value in properties.items() if isinstance(key, str)}
    variables.update(
        first_name=words[0] if words else "",
        name=full_name,
        company=company,
        brand=(brand or "").strip(),
        survey_url=survey_url,
        properties=dict(properties),
    )
    return variables


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


# What validation renders SMS templates with to estimate their length: a long-ish first name, a company name
# and a survey link as long as the real ones.
SAMPLE_VARIABLES: dict[str, object] = template_variables(
    "Alexandra Sample", {}, "Example Company", "https://nps.example.com/s/abcdefghijklmnopqrstuv"
)

_SPACE_RUN = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_COMMA = re.compile(r"[ \t]+,")


def template_syntax_problem(source: str) -> str | None:
    """Why ``source`` does not compile ("line 2: unexpected '}'"), or None when it does."""
    try:
        _compile(source)
    except TemplateProblem as problem:
        return problem.message
    return None


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    """Compiled template, cached: the dispatcher renders the same few sources for thousands of contacts."""
    try:
        return ENVIRONMENT.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error on line {exc.lineno}: {exc.message}") from None


def render(source: str, variables: Mapping[str, object]) -> str:
    """Render a template in the sandbox; TemplateProblem (never a raw traceback) when it cannot be.

    Runs of spaces left by empty variables ("Hi {{ first_name }} ,") are collapsed, spaces before a comma are
    dropped and the result is stripped; line breaks are kept (email intros may have paragraphs).
    """
    template = _compile(source)
    try:
        text = template.render(dict(variables))
    except SecurityError as exc:
        raise TemplateProblem(
            f"the template uses something the sandbox forbids: {exc}", security=True
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"the template uses a missing value: {exc}") from None
    except Exception as exc:  # any runtime error inside admin-written template code
        raise TemplateProblem(f"the template failed: {type(exc).__name__}: {exc}") from None
    return _tidy(text)


def _tidy(text: str) -> str:
    lines = (_SPACE_BEFORE_COMMA.sub(",", _SPACE_RUN.sub(" ", line)).rstrip() for line in text.split("\n"))
    return "\n".join(lines).strip()


# --- SMS segments -------------------------------------------------------------------------------------------

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + one septet = two each).
# ESC itself (0x1B) is left out: a literal escape character in a text cannot be sent as GSM-7.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

_GSM_SINGLE, _GSM_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67


def sms_segments(text: str) -> tuple[int, str]:
    """How many SMS segments ``text`` takes and in which encoding: (count, "GSM-7" | "UCS-2").

    GSM-7 when every character is in the GSM 03.38 alphabet (extension characters such as "€" or "{" take
    two septets): 160 septets fit one segment, 153 each when concatenated. Otherwise UCS-2, counted in UTF-16
    code units (an emoji takes two): 70 in one segment, 67 each when concatenated. A concatenated message
    never splits an escape sequence or a surrogate pair across segments, which is why the count is done by
    filling segments rather than by dividing. An empty text takes 0 segments.
    """
    if all(char in _GSM_BASIC or char in _GSM_EXTENSION for char in text):
        units = [2 if char in _GSM_EXTENSION else 1 for char in text]
        return _count_segments(units, _GSM_SINGLE, _GSM_PART), "GSM-7"
    units = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return _count_segments(units, _UCS2_SINGLE, _UCS2_PART), "UCS-2"


def _count_segments(units: list[int], single: int, part: int) -> int:
    """Segments needed for characters of the given widths, without splitting a character."""
    total = sum(units)
    if total <= single:
        return 1 if total else 0
    segments, used = 1, 0
    for width in units:
        if used + width > part:
            segments, used = segments + 1, 0
        used += width
    return segments
