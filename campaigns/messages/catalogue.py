"""The message catalogue: every text a respondent sees, one YAML file per locale in ``campaigns/catalogue/``.

Translators edit those files only: each is a flat mapping of key -> text, where a text is a Jinja2 template
(``{{ company }}``, ``{% if first_name %}...{% endif %}``) rendered by :func:`campaigns.messages.templates.render` in its
sandbox. A new ``xx.yaml`` file is a new shipped locale, picked up without code changes. The files are read
with YAML's base loader, so every value stays text (``no`` is the word "no", not False) and an empty value
counts as missing.

Locale choice (:func:`resolve`): the exact locale, then its language ("pt-BR" -> "pt"), where Chinese goes by
script: "zh-TW", "zh-HK", "zh-MO" and "zh-Hant-*" -> "zh-Hant"; "zh", "zh-CN", "zh-SG" and "zh-Hans-*" ->
"zh-Hans"; then another variant of the same language; then English. Texts fall back per key
(:func:`catalogue`): a key missing in the chosen locale comes from its less specific locales, then from English.

A campaign file can override any key per locale (``messages: {de: {page_thanks: ...}}``); what a respondent of a
campaign sees is looked up with :func:`campaigns.messages.texts.campaign_text`, which falls back to these files.

This module imports nothing from :mod:`campaigns.messages.templates` at import time, because that module builds its
``SHIPPED_TEXTS`` from these files.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType

import yaml

__all__ = [
    "DIRECTORY",
    "FALLBACK_LOCALE",
    "KEYS",
    "LOCALES",
    "CatalogueError",
    "best_locale",
    "catalogue",
    "locale_chain",
    "locale_file",
    "resolve",
    "shipped_text",
    "text",
]

log = logging.getLogger(__name__)

FALLBACK_LOCALE = "en"
DIRECTORY = "locales"  # inside the campaigns.messages package
_SUFFIX = ".yaml"

# Regions written in Traditional Chinese; every other Chinese locale without a script subtag is Simplified.
_TRADITIONAL_REGIONS = frozenset({"tw", "hk", "mo"})


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


def _key(locale: str) -> str:
    """Comparable form: case-insensitive, "_" and "-" alike, POSIX suffixes dropped ("pt_BR.UTF-8" -> "pt-br")."""
    bare = locale.strip().split(".", 1)[0].split("@", 1)[0]
    return bare.replace("_", "-").casefold()


def _language(key: str) -> str:
    return key.split("-", 1)[0]


def _script_key(key: str) -> str:
    """The language, and for Chinese the script: "zh-tw" -> "zh-hant", "zh-cn" and "zh" -> "zh-hans"."""
    parts = key.split("-")
    if parts[0] != "zh":
        return parts[0]
    subtags = set(parts[1:])
    if "hant" in subtags or (subtags & _TRADITIONAL_REGIONS and "hans" not in subtags):
        return "zh-hant"
    return "zh-hans"


def locale_chain(locale: str) -> list[str]:
    """Comparable forms of ``locale`` from the most to the least specific, without English.

    "de-CH-1996" -> ["de-ch-1996", "de-ch", "de"]; "zh-TW" -> ["zh-tw", "zh-hant"];
    "zh-Hant-HK" -> ["zh-hant-hk", "zh-hant"]; "zh-CN" -> ["zh-cn", "zh-hans", "zh"].
    """
    key = _key(locale)
    if not key:
        return []
    parts = key.split("-")
    chain = ["-".join(parts[:end]) for end in range(len(parts), 0, -1)]
    if parts[0] == "zh":
        script = _script_key(key)
        # Keep only what is written in the same script: "zh-hant-tw" must not fall to bare "zh" (Simplified).
        chain = [entry for entry in chain if _script_key(entry) == script and entry != "zh"]
        chain.append(script)
        if script == "zh-hans":
            chain.append("zh")
    return list(dict.fromkeys(chain))


def best_locale(wanted: str, available: Iterable[str]) -> str | None:
    """The entry of ``available`` that best serves ``wanted``, or None.

    Order: the exact locale, its less specific forms ("pt-BR" -> "pt"; Chinese by script, see
    :func:`locale_chain`), then another variant in the same script ("zh-HK" -> "zh-TW", "sv-FI" -> "sv-SE"),
    then any variant of the same language: a text in the reader's language beats a foreign one.
    """
    candidates = list(available)
    by_key: dict[str, str] = {}
    for locale in candidates:
        by_key.setdefault(_key(locale), locale)
    for entry in locale_chain(wanted):
        if entry in by_key:
            return by_key[entry]
    key = _key(wanted)
    if not key:
        return None
    script, language = _script_key(key), _language(key)
    for test in (lambda other: _script_key(other) == script, lambda other: _language(other) == language):
        found = next((locale for locale in candidates if test(_key(locale))), None)
        if found is not None:
            return found
    return None


@functools.lru_cache(maxsize=512)
def resolve(locale: str | None) -> str:
    """The shipped catalogue locale chosen for ``locale``; English when nothing closer is shipped."""
    if not locale:
        return FALLBACK_LOCALE
    return best_locale(locale, LOCALES) or FALLBACK_LOCALE


@functools.lru_cache(maxsize=512)
def catalogue(locale: str | None) -> Mapping[str, str]:
    """Every key's text for ``locale``, each from the most specific shipped file that has it, else English."""
    return MappingProxyType({**locale_file(FALLBACK_LOCALE), **_own_texts(resolve(locale))})


@functools.cache
def _own_texts(shipped_locale: str) -> Mapping[str, str]:
    """The keys the files of a shipped locale and its less specific shipped locales give; no English fallback."""
    shipped = {_key(locale): locale for locale in LOCALES}
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
    campaign fallback chain (:func:`campaigns.messages.texts.campaign_text`), where the campaign's default locale comes
    before English.
    """
    if not locale:
        return None
    chosen = best_locale(locale, LOCALES)
    return None if chosen is None else _own_texts(chosen).get(key)


def text(locale: str | None, key: str, /, **variables: object) -> str:
    """The catalogue text ``key`` for ``locale``, rendered with ``variables`` (missing ones render empty).

    A text that fails to render (a translation mistake) is logged and replaced by the English one, so a
    respondent always gets an answer. An unknown ``key`` raises KeyError: that is a programming error.
    """
    from campaigns.messages.templates import (  # deferred: templates imports this module
        TemplateProblem,
        render,
    )

    texts = catalogue(locale)
    if key not in texts:
        raise KeyError(f"no catalogue text {key!r}; known keys: {', '.join(KEYS)}")
    try:
        return render(texts[key], variables)
    except TemplateProblem as problem:
        english = locale_file(FALLBACK_LOCALE).get(key)
        if english is None or texts[key] == english:
            raise
        log.warning("catalogue text %r for %r failed (%s); sending English", key, resolve(locale), problem)
        return render(english, variables)
