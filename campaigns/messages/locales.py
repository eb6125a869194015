"""Locales: how one is spelled, how two are compared, and which of several serves a reader best.

Pure functions over locale strings; the shipped catalogue (:mod:`campaigns.messages.catalogue`) and a contact's
texts (:mod:`campaigns.messages.texts`) both choose locales with them, so a contact's SMS replies, email and
survey page come in the same language.

- :func:`normalise_locale` is the canonical BCP 47 spelling of a locale an admin or an import gives
  ("pt_br" -> "pt-BR", "zh-hans" -> "zh-Hans"), None when the text is not a locale: what is stored.
- :func:`locale_key` is the form locales are compared in: case-insensitive, "_" and "-" alike, POSIX suffixes
  dropped ("pt_BR.UTF-8" -> "pt-br"). It accepts anything, since a stored locale may predate validation.
- :func:`locale_chain` and :func:`resolve_locale` choose: the exact locale, then its less specific forms
  ("pt-BR" -> "pt"), where Chinese goes by script ("zh-TW", "zh-HK", "zh-MO" and "zh-Hant-*" -> "zh-Hant";
  "zh", "zh-CN", "zh-SG" and "zh-Hans-*" -> "zh-Hans"), then another variant of the same language.
- :data:`FALLBACK_LOCALE` ends every chain: English is shipped complete.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "FALLBACK_LOCALE",
    "locale_chain",
    "locale_key",
    "normalise_locale",
    "resolve_locale",
    "text_direction",
]

# The last resort of every fallback chain; its catalogue file has every key.
FALLBACK_LOCALE = "en"

# Language, optional Script, optional REGION; "_" is read as "-".
_LOCALE_RE = re.compile(r"([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|[0-9]{3}))?")

# Regions written in Traditional Chinese; every other Chinese locale without a script subtag is Simplified.
_TRADITIONAL_REGIONS = frozenset({"tw", "hk", "mo"})


def normalise_locale(text: str) -> str | None:
    """A locale in canonical BCP 47 case ("pt_br" -> "pt-BR", "zh-hans" -> "zh-Hans"), None when invalid."""
    match = _LOCALE_RE.fullmatch(text.strip())
    if match is None:
        return None
    language, script, region = match.groups()
    return "-".join(
        part for part in (language.lower(), script and script.title(), region and region.upper()) if part
    )


# Languages written right to left (Arabic, Hebrew, Persian, Urdu, Pashto, Sindhi, Uyghur, Yiddish, Dhivehi,
# Sorani Kurdish): their pages and emails carry dir="rtl".
_RIGHT_TO_LEFT = frozenset({"ar", "he", "iw", "fa", "ur", "ps", "sd", "ug", "yi", "dv", "ckb"})


def text_direction(locale: str) -> str:
    """ "rtl" for a language written right to left ("ar-EG"), else "ltr"; only the language subtag decides."""
    return "rtl" if language_of(locale) in _RIGHT_TO_LEFT else "ltr"


def locale_key(locale: str) -> str:
    """Comparable form: case-insensitive, "_" and "-" alike, POSIX suffixes dropped ("pt_BR.UTF-8" -> "pt-br")."""
    bare = locale.strip().split(".", 1)[0].split("@", 1)[0]
    return bare.replace("_", "-").casefold()


def language_of(locale: str) -> str:
    """The language subtag in comparable form: "pt_BR.UTF-8" -> "pt", "zh-Hant" -> "zh", "" -> ""."""
    return _language(locale_key(locale))


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
    key = locale_key(locale)
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


def resolve_locale(wanted: str, available: Iterable[str]) -> str | None:
    """The entry of ``available`` that best serves ``wanted``, or None.

    Order: the exact locale, its less specific forms ("pt-BR" -> "pt"; Chinese by script, see
    :func:`locale_chain`), then another variant in the same script ("zh-HK" -> "zh-TW", "sv-FI" -> "sv-SE"),
    then any variant of the same language (the first in ``available`` order): a text in the reader's
    language beats a foreign one.
    """
    candidates = list(available)
    by_key: dict[str, str] = {}
    for locale in candidates:
        by_key.setdefault(locale_key(locale), locale)
    for entry in locale_chain(wanted):
        if entry in by_key:
            return by_key[entry]
    key = locale_key(wanted)
    if not key:
        return None
    script, language = _script_key(key), _language(key)
    for test in (lambda other: _script_key(other) == script, lambda other: _language(other) == language):
        found = next((locale for locale in candidates if test(locale_key(locale))), None)
        if found is not None:
            return found
    return None
