"""Opt-out, opt-in and help in an SMS reply, in every shipped language: keywords and revocation phrases.

US rules (47 CFR 64.1200(a)(10)) ask that a revocation made by any reasonable means be honoured: "stop", "quit",
"end", "revoke", "opt out", "cancel" and "unsubscribe" are revocations as such, and so is any wording a
reasonable person reads as one ("Stop texting me", "please remove me from your list", "ARRÊT", "退订"). The words
are data, one file per locale in ``campaigns/messages/keywords/`` (its README says how to extend them and cites
the sources); the words of every file count in every reply, whatever the contact's locale.

- A *keyword* counts as the whole reply, alone or with courtesy words around it ("STOP", "Stop please",
  "ARRÊT svp", "取消谢谢"); case, accents, punctuation and emoji do not matter.
- A *phrase* counts anywhere in a reply, as whole words in order ("9 but stop texting me" is an opt-out). A
  bare keyword inside a sentence is not one: "the app won't stop crashing" stays a comment.

:func:`consent_intent` is pure and linear in the length of the text (one normalising pass, one tokenising pass,
a dictionary lookup per word for phrases of bounded length). The files are read once, on first use.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal, TypeAlias

import yaml

__all__ = ["DIRECTORY", "Intent", "IntentKind", "KeywordFileError", "Rules", "consent_intent", "rules"]

DIRECTORY = "keywords"  # inside the campaigns.messages package, next to the catalogue's translations/
IntentKind: TypeAlias = Literal["opt_out", "opt_in", "help"]
_KINDS: Final[tuple[IntentKind, ...]] = ("opt_out", "opt_in", "help")
_MAX_KEYWORD_WORDS = 8  # a longer reply is never "just a keyword", whatever courtesy surrounds it
_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Keyboards with a Persian layout (common for Arabic too) type yeh and kaf as U+06CC and U+06A9 ("ایقاف").
_ARABIC_SPELLINGS: Final = str.maketrans(
    {"\u0640": None, "\u0629": "\u0647", "\u0649": "\u064a", "\u06cc": "\u064a", "\u06a9": "\u0643"}
)


class KeywordFileError(Exception):
    """A keyword file cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Intent:
    """What a reply asks for: ``keyword`` is the canonical word or phrase that said so ("STOP", "STOP TEXTING")."""

    kind: IntentKind
    keyword: str
    free_text: bool  # a phrase in a longer reply, not a keyword reply


@dataclass(frozen=True)
class Rules:
    keywords: Mapping[str, tuple[IntentKind, str]]  # joined comparable form ("optout") -> kind, canonical
    phrases: Mapping[str, tuple[tuple[tuple[str, ...], str], ...]]  # first word -> (words, canonical)
    cjk_phrases: tuple[tuple[str, str], ...]  # runs of ideographs matched anywhere
    courtesy: frozenset[str]
    cjk_courtesy: tuple[str, ...]


def consent_intent(text: str, rules: Rules | None = None) -> Intent | None:
    """The opt-out, opt-in or help request a reply makes, or None (a score or a comment)."""
    rules = rules or shipped_rules()
    comparable = _comparable(text)
    words = _WORD.findall(comparable)
    keyword = _whole_reply_keyword(words, rules)
    if keyword is not None:
        return keyword
    return _phrase(words, comparable, rules)


def _comparable(text: str) -> str:
    """Case folded, NFKC ("ＳＴＯＰ"), accents dropped ("arrêt" -> "arret", "đ" -> "d"), one apostrophe.

    Arabic loses hamza and vowel marks with the accents ("إلغاء" -> "الغاء"), its tatweel ("إيـقاف"), and
    writes teh marbuta as heh and alef maksura (and the Persian yeh) as yeh, as many type them ("مساعدة" -> "مساعده").
    """
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'").replace("đ", "d")
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFKD", folded).translate(_ARABIC_SPELLINGS)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _whole_reply_keyword(words: list[str], rules: Rules) -> Intent | None:
    if not words or len(words) > _MAX_KEYWORD_WORDS:
        return None
    core = [kept for word in words if (kept := _without_courtesy(word, rules))]
    if not core:
        return None
    found = rules.keywords.get("".join(core))
    if found is None:
        return None
    kind, canonical = found
    return Intent(kind, canonical, free_text=False)


def _without_courtesy(word: str, rules: Rules) -> str:
    if word in rules.courtesy:
        return ""
    if _CJK.search(word):
        for courtesy in rules.cjk_courtesy:
            word = word.replace(courtesy, "")
    return word


def _phrase(words: list[str], comparable: str, rules: Rules) -> Intent | None:
    for position, word in enumerate(words):
        for phrase, canonical in rules.phrases.get(word, ()):
            if tuple(words[position : position + len(phrase)]) == phrase:
                return Intent("opt_out", canonical, free_text=True)
    if _CJK.search(comparable):
        for run, canonical in rules.cjk_phrases:
            if run in comparable:
                return Intent("opt_out", canonical, free_text=True)
    return None


# --- the files ----------------------------------------------------------------------------------------------


@functools.cache
def shipped_rules() -> Rules:
    """The rules of every file in ``campaigns/messages/keywords/``, read once."""
    directory = resources.files("campaigns.messages").joinpath(DIRECTORY)
    files = sorted(
        (item for item in directory.iterdir() if item.name.endswith(".yaml")), key=lambda i: i.name
    )
    return rules({item.name: item.read_text(encoding="utf-8") for item in files})


def rules(files: Mapping[str, str]) -> Rules:
    """Rules from keyword files (name -> YAML text); raises KeywordFileError naming the file and field."""
    keywords: dict[str, tuple[IntentKind, str]] = {}
    phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    cjk_phrases: list[tuple[str, str]] = []
    courtesy: set[str] = set()
    cjk_courtesy: list[str] = []
    for name, text in files.items():
        data = yaml.load(text, Loader=yaml.BaseLoader)  # every value stays text ("no" is a word)
        if not isinstance(data, dict):
            raise KeywordFileError(f"{name}: expected a mapping with opt_out, opt_in, help")
        for kind in _KINDS:
            for entry in _words_of(data, name, kind, "keywords"):
                words = _WORD.findall(_comparable(entry))
                key = "".join(words)
                if key:
                    keywords.setdefault(key, (kind, " ".join(words).upper()))
        for entry in _words_of(data, name, "opt_out", "phrases"):
            comparable = _comparable(entry)
            canonical = " ".join(_WORD.findall(comparable)).upper()
            if _CJK.search(comparable):
                cjk_phrases.append(("".join(comparable.split()), canonical))
            elif phrase := tuple(_WORD.findall(comparable)):
                phrases.setdefault(phrase[0], []).append((phrase, canonical))
        for entry in _list(data.get("courtesy", []), name, "courtesy"):
            comparable = _comparable(entry)
            if _CJK.search(comparable):
                cjk_courtesy.append(comparable)
            else:
                courtesy.update(_WORD.findall(comparable))
    return Rules(
        keywords=keywords,
        phrases={first: tuple(found) for first, found in phrases.items()},
        cjk_phrases=tuple(cjk_phrases),
        courtesy=frozenset(courtesy),
        cjk_courtesy=tuple(cjk_courtesy),
    )


def _words_of(data: dict[str, object], name: str, kind: str, field: str) -> list[str]:
    section = data.get(kind, {})
    if not isinstance(section, dict):
        raise KeywordFileError(f"{name}: {kind} must be a mapping")
    return _list(section.get(field, []), name, f"{kind}.{field}")


def _list(value: object, name: str, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise KeywordFileError(f"{name}: {field} must be a list of words")
    return value
