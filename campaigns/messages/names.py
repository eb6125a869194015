"""The ``first_name`` a greeting uses: the contact's own when imported, else derived from the name by locale.

Pure functions over plain values. Name order differs by language, so the default cannot be "the first word":

- Vietnamese names put the family name first and the given name last: "Nguyễn Văn An" is greeted "An".
- Chinese, Japanese and Korean greetings use the full name ("王小明", "山田 太郎"): the given name alone would
  be over-familiar, and the first word is the family name. A name written in those scripts is greeted in full
  whatever the contact's locale, since the locale is often missing or the company's.
- Everywhere else the first word ("Ana Lima" -> "Ana").

An imported ``first_name`` (a CSV column or a property, spelled "first_name", "First Name" or "first-name")
always wins: only the customer knows what their customers are called.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from campaigns.messages.locales import language_of

__all__ = ["first_name", "imported_first_name"]

# Languages whose given name comes last, and those whose greetings use the whole name.
_GIVEN_NAME_LAST = frozenset({"vi"})
_FULL_NAME = frozenset({"zh", "ja", "ko"})
# Han, Hiragana, Katakana and Hangul (syllables and jamo): a name in these scripts is greeted in full.
_CJK = re.compile(
    r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
_SEPARATORS = re.compile(r"[\s_-]+")


def first_name(name: str | None, locale: str | None) -> str:
    """The name a greeting uses for a contact called ``name`` whose locale is ``locale`` (None: unknown)."""
    full = " ".join((name or "").split())
    if not full:
        return ""
    language = language_of(locale) if locale else ""
    if language in _FULL_NAME or _CJK.search(full):
        return full
    words = full.split(" ")
    return words[-1] if language in _GIVEN_NAME_LAST else words[0]


def imported_first_name(properties: Mapping[str, object]) -> str:
    """The contact's own ``first_name`` property (any common spelling of the key), "" when none is given."""
    for key, value in properties.items():
        if isinstance(key, str) and _SEPARATORS.sub("_", key.strip()).casefold() == "first_name":
            text = "" if value is None else str(value).strip()
            if text:
                return text
    return ""
