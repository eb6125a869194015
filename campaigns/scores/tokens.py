"""Words of a customer's comment, for themes: pure, no I/O.

Languages written with spaces are split on word characters; Chinese, which is not, is segmented by jieba (a
maintained segmenter with its own dictionary; loaded on the first Chinese comment). Stop words come from
stopwords-iso, a maintained list per language, plus the other shipped languages' so that a comment in a language
other than the contact's still loses its "the" and "der". A few words the lists drop but feedback needs stay.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import unicodedata

import stopwordsiso

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
TOKEN = re.compile(WORD.pattern + r"|[^\w\s]")
NOT_WORDS = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\S+|&(?:[a-z]+|#\d+);", re.IGNORECASE)
"""Links, email addresses and HTML entities: what they spell ("https", "amp") is not what a comment is about."""
"""Words and punctuation marks: a mark ends a run of words, so "team, easy" is no phrase."""
SHIPPED_LANGUAGES = ("en", "de", "es", "fr", "it", "nl", "pt", "fi", "vi", "zh", "ar")
KEEP = frozenset({"help", "slow", "fast", "price", "support"})
"""Words some lists count as stop words that say what a comment is about."""
EXTRA_STOP_WORDS = frozenset({"جدا", "جداً"})
"""Stop words a list lacks ("very" in Arabic)."""


@functools.cache
def stop_words() -> frozenset[str]:
    words: set[str] = set()
    for language in SHIPPED_LANGUAGES:
        words |= {unicodedata.normalize("NFKC", w).casefold() for w in stopwordsiso.stopwords(language)}
    return frozenset((words | EXTRA_STOP_WORDS) - KEEP)


@functools.cache
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)  # it announces building its dictionary at INFO
    return jieba


def _words(text: str) -> list[str]:
    if CJK.search(text):
        return [w.strip() for w in _jieba().cut(text) if w.strip()]
    return TOKEN.findall(text)


def _content(word: str, stops: frozenset[str]) -> bool:
    """A word that says something: not punctuation, not a stop word, not one letter or one Chinese character
    (mostly a particle: 了, 的, 很)."""
    is_word = WORD.fullmatch(word) is not None or CJK.search(word) is not None
    return is_word and len(word) > 1 and word not in stops


def terms(text: str) -> list[list[str]]:
    """The comment's content words, in runs: a stop word or punctuation ends a run, so two-word phrases never
    jump over a removed word ("not the price" gives no "not price")."""
    normal = NOT_WORDS.sub(" . ", unicodedata.normalize("NFKC", text).casefold())
    runs: list[list[str]] = [[]]
    stops = stop_words()
    for word in _words(normal):
        if _content(word, stops):
            runs[-1].append(word)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def comment_terms(text: str) -> tuple[set[str], set[str]]:
    """(words, two-word phrases) of a comment, each once."""
    runs = terms(text)
    words = {word for run in runs for word in run}
    phrases = {f"{a} {b}" for run in runs for a, b in itertools.pairwise(run)}
    return words, phrases
