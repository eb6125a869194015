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
from dataclasses import dataclass, fields, replace
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns.catalogue import LOCALES, best_locale, locale_file

__all__ = [
    "ENVIRONMENT",
    "FALLBACK_LOCALE",
    "SAMPLE_VARIABLES",
    "SHIPPED_TEXTS",
    "MessageTexts",
    "TemplateProblem",
    "locale_language",
    "render",
    "resolve_locale",
    "sms_segments",
    "template_syntax_problem",
    "template_variables",
    "texts_for",
]

# The last resort of every fallback chain; SHIPPED_TEXTS holds every field for it.
FALLBACK_LOCALE = "en"


@dataclass(frozen=True)
class MessageTexts:
    """The Jinja2 sources of one locale's texts; None means "not given here, fall back".

    The email body with the eleven score links is built elsewhere; ``email_intro`` is the sentence or two above
    them.
    """

    sms: str | None = None
    sms_reminder: str | None = None
    email_subject: str | None = None
    email_intro: str | None = None
    email_reminder_subject: str | None = None


MESSAGE_FIELDS: tuple[str, ...] = tuple(field.name for field in fields(MessageTexts))


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

# The shipped texts of every locale, read from the message catalogue (campaigns/catalogue/<locale>.yaml), where
# translators edit them. A field the file leaves out or empty is None here and falls back like any other
# (see texts_for); English is complete. SMS invites and reminders stay within one GSM-7 segment for typical
# names where the script allows: their wording avoids letters outside the GSM alphabet (Spanish "número",
# Portuguese "você", "Olá"), since a single one switches the whole message to UCS-2 and 70-character segments.
# Chinese and Vietnamese are always UCS-2 and are kept within two segments even for long names. Every SMS says
# how to answer and how to opt out; STOP is kept in English everywhere because carriers and Twilio act on that
# keyword whatever the language.
SHIPPED_TEXTS: dict[str, MessageTexts] = {
    locale: MessageTexts(**{name: locale_file(locale).get(name) for name in MESSAGE_FIELDS})
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
    "zh-CN" and "zh-SG" prefer "zh-Hans" (see :func:`campaigns.catalogue.best_locale`).
    """
    return best_locale(wanted, available)


def texts_for(
    definition_messages: Mapping[str, MessageTexts], contact_locale: str | None, default_locale: str
) -> tuple[str, MessageTexts]:
    """The locale chosen for a contact and its complete texts (every field set).

    The locale is the first of: the contact's locale, the campaign's default locale, "en", each resolved by
    :func:`resolve_locale` against the locales the campaign has texts for plus the shipped ones (campaign
    locales first). So a "pt-BR" contact gets the campaign's "pt-BR" texts, else "pt", else shipped "pt".

    Each field is then taken from the first that has it: the campaign's text for the chosen locale, the shipped
    text for the chosen locale, the campaign's text for its default locale, the shipped text for the default
    locale, the shipped English text. A campaign can thus override only the SMS of a locale and keep the
    shipped email texts in the same language.
    """
    available = [
        *definition_messages,
        *(locale for locale in SHIPPED_TEXTS if locale not in definition_messages),
    ]
    chosen = _first_resolved([contact_locale, default_locale, FALLBACK_LOCALE], available)
    default = resolve_locale(default_locale, available) or FALLBACK_LOCALE
    chain = [
        definition_messages.get(chosen),
        _shipped(chosen),
        definition_messages.get(default),
        _shipped(default),
        SHIPPED_TEXTS[FALLBACK_LOCALE],
    ]
    values = {name: _first_text(chain, name) for name in MESSAGE_FIELDS}
    return chosen, replace(MessageTexts(), **values)


def _first_resolved(candidates: list[str | None], available: list[str]) -> str:
    for candidate in candidates:
        if candidate:
            resolved = resolve_locale(candidate, available)
            if resolved is not None:
                return resolved
    return FALLBACK_LOCALE


def _shipped(locale: str) -> MessageTexts | None:
    """Shipped texts for a locale as spelled in a campaign ("PT" or "pt-BR" both find "pt")."""
    resolved = resolve_locale(locale, list(SHIPPED_TEXTS))
    return SHIPPED_TEXTS[resolved] if resolved is not None else None


def _first_text(chain: list[MessageTexts | None], name: str) -> str | None:
    for texts in chain:
        value = getattr(texts, name) if texts is not None else None
        if value is not None:
            return str(value)
    return None


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
