"""The message catalogue: every text a respondent sees, one YAML file per locale in ``campaigns/messages/translations/``.

Translators edit those files only: each is a flat mapping of key -> text, where a text is a Jinja2 template
(``{{ company }}``, ``{% if first_name %}...{% endif %}``) rendered by :func:`campaigns.messages.templates.render` in its
sandbox. A new ``xx.yaml`` file is a new shipped locale, picked up without code changes. The files are read
with YAML's base loader, so every value stays text (``no`` is the word "no", not False) and an empty value
counts as missing.

Locale choice (:func:`resolve`) follows :func:`campaigns.messages.locales.resolve_locale`: the exact locale, then
its language ("pt-BR" -> "pt", Chinese by script), then another variant of the same language, then English.
Texts fall back per key (:func:`catalogue`): a key missing in the chosen locale comes from its less specific
locales, then from English.

A campaign file can override any key per locale (``messages: {de: {page_thanks: ...}}``), as
:class:`MessageTexts`; what a respondent of a campaign sees is resolved and rendered by
:mod:`campaigns.messages.texts`, which falls back to these files. This module only reads them: it renders nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType

import yaml

from campaigns.messages.locales import FALLBACK_LOCALE, locale_chain, locale_key, resolve_locale

__all__ = [
    "DIRECTORY",
    "KEYS",
    "LOCALES",
    "MESSAGE_FIELDS",
    "SHIPPED_TEXTS",
    "CatalogueError",
    "MessageTexts",
    "catalogue",
    "locale_file",
    "resolve",
    "shipped_text",
]

DIRECTORY = "translations"  # inside the campaigns.messages package; translators edit these files
_SUFFIX = ".yaml"


class CatalogueError(Exception):
    """A catalogue file cannot be used; the message names the file and says why."""


# --- files --------------------------------------------------------------------------------------------------


def _directory() -> Traversable:
    return resources.files("campaigns.messages").joinpath(DIRECTORY)


@functools.cache
def _files() -> dict[str, str]:
    """Locale (as the file spells it, "zh-Hans") -> file name, for every ``*.yaml`` of the catalogue."""
    names = [item.name for item in _directory().iterdir() if item.name.endswith(_SUFFIX)]
    return {
        name.removesuffix(_SUFFIX): name
        for name in sorted(names, key=lambda name: name.removesuffix(_SUFFIX))
    }


@functools.cache
def locale_file(locale: str) -> Mapping[str, str]:
    """The texts one file gives, exactly as written (no fallback); empty values are left out.

    ``locale`` is a shipped locale as :data:`LOCALES` spells it. Raises :class:`CatalogueError` for a file
    that is not a flat mapping of keys to texts.
    """
    name = _files().get(locale)
    if name is None:
        raise CatalogueError(f"no catalogue file for locale {locale!r}")
    where = f"campaigns/messages/{DIRECTORY}/{name}"
    try:
        # BaseLoader: every scalar is a string; nothing is turned into a bool, a number or a date.
        data = yaml.load(_directory().joinpath(name).read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CatalogueError(f"{where}: cannot be read: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CatalogueError(f"{where}: must be a mapping of keys to texts")
    texts: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise CatalogueError(f"{where}: {key}: must be a text, not a list or a mapping")
        if value.strip():
            texts[key] = value
    return MappingProxyType(texts)


def _shipped_locales() -> tuple[str, ...]:
    found = list(_files())
    if FALLBACK_LOCALE not in found:
        raise CatalogueError(f"campaigns/messages/{DIRECTORY}/{FALLBACK_LOCALE}{_SUFFIX} is missing")
    return (FALLBACK_LOCALE, *(locale for locale in found if locale != FALLBACK_LOCALE))


# Shipped locales, English first, then in the order of their names.
LOCALES: tuple[str, ...] = _shipped_locales()

# Every key, in the order of the English file; English is complete by definition.
KEYS: tuple[str, ...] = tuple(locale_file(FALLBACK_LOCALE))


# --- locale choice ------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def resolve(locale: str | None) -> str:
    """The shipped catalogue locale chosen for ``locale``; English when nothing closer is shipped."""
    if not locale:
        return FALLBACK_LOCALE
    return resolve_locale(locale, LOCALES) or FALLBACK_LOCALE


@functools.lru_cache(maxsize=512)
def catalogue(locale: str | None) -> Mapping[str, str]:
    """Every key's text for ``locale``, each from the most specific shipped file that has it, else English."""
    return MappingProxyType({**locale_file(FALLBACK_LOCALE), **_own_texts(resolve(locale))})


@functools.cache
def _own_texts(shipped_locale: str) -> Mapping[str, str]:
    """The keys the files of a shipped locale and its less specific shipped locales give; no English fallback."""
    shipped = {locale_key(locale): locale for locale in LOCALES}
    chain = [
        shipped[entry] for entry in locale_chain(shipped_locale) if entry in shipped
    ]  # most specific first
    merged: dict[str, str] = {}
    for layer in reversed(dict.fromkeys(chain)):
        merged.update(locale_file(layer))
    return MappingProxyType(merged)


def shipped_text(locale: str | None, key: str) -> str | None:
    """The source (not rendered) of ``key`` as the shipped files give it for ``locale``, or None.

    Unlike :func:`catalogue`, nothing falls back to English: the locale is matched like :func:`resolve` does
    ("pt-BR" -> "pt"), but a locale no file serves ("sv") gives None, and so does a key the chosen locale's
    files leave out or empty. English locales ("en", "en-GB") give the English text. This is one layer of the
    campaign fallback chain (:mod:`campaigns.messages.texts`), where the campaign's default locale comes
    before English.
    """
    if not locale:
        return None
    chosen = shipped_locale(locale)
    return None if chosen is None else _own_texts(chosen).get(key)


def shipped_locale(locale: str) -> str | None:
    """The shipped locale that serves ``locale`` best (:func:`resolve_locale` over :data:`LOCALES`), or None."""
    return _resolve_cached(locale, LOCALES)


@functools.lru_cache(maxsize=1024)
def _resolve_cached(locale: str, available: tuple[str, ...]) -> str | None:
    """Cached by the locales too (a reload rebinds LOCALES): the dispatcher asks for every text it composes."""
    return resolve_locale(locale, available)


# --- the survey texts ---------------------------------------------------------------------------------------

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

    A campaign can set any key of the message catalogue (``campaigns/messages/translations/en.yaml``): the five survey
    texts are fields, every other key (``ask_comment``, ``page_thanks``, ``question`` ...) is in ``others``. The
    email body with the eleven score links is built elsewhere; ``email_intro`` is the sentence or two above them.
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


# The shipped survey texts of every locale, as the files give them: a field a file leaves out or empty is None
# here and falls back like any other (see campaigns.messages.texts); English is complete. SMS invites and
# reminders stay within one GSM-7 segment for typical names where the script allows: their wording avoids
# letters outside the GSM alphabet (Spanish "número", Portuguese "você", "Olá"), since a single one switches the
# whole message to UCS-2 and 70-character segments. Chinese and Vietnamese are always UCS-2 and are kept within
# two segments even for long names. Every SMS says how to answer and how to opt out; STOP is kept in English
# everywhere because carriers and Twilio act on that keyword whatever the language.
SHIPPED_TEXTS: dict[str, MessageTexts] = {
    locale: MessageTexts.from_mapping({name: locale_file(locale).get(name) for name in MESSAGE_FIELDS})
    for locale in LOCALES
}
