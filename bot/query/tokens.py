"""The `/nps` text as tokens: Slack's escapes undone, words split on whitespace, shell-like quotes.

A quote opens a token or a filter value only, so apostrophes inside words ("don't") stay literal; `quote` is
the inverse, writing a value back as one token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class UnclosedQuote(ValueError):
    def __init__(self, quote: str) -> None:
        super().__init__(f"a quote ({quote}) is not closed")
        self.quote = quote


# Opening quote -> the closers it accepts; Slack clients on macOS and iOS send typographic quotes.
_QUOTES = {'"': '"', "'": "'", "“": "”“", "”": "”", "„": "“”", "‘": "’‘", "«": "»"}
# Slack escapes &, < and > and may wrap emails, phones and links as <mailto:a@b.c|a@b.c>.
_SLACK_LINK = re.compile(r"<(?:mailto:|tel:)?([^<>|]*)(?:\|([^<>]*))?>")


@dataclass(frozen=True)
class Token:
    text: str
    quoted: bool  # some of it was inside quotes: never a command word, period or filter keyword
    op: int | None  # index in text of the first unquoted "=" or ":" (a filter)

    @property
    def word(self) -> str:
        return "" if self.quoted else self.text.casefold()


def normalize(text: str) -> str:
    """The text as the person typed it: Slack's links unwrapped and its HTML escapes undone."""
    text = _SLACK_LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def tokenize(text: str) -> list[Token]:
    """Whitespace-separated tokens with shell-like quotes; a quote opens a token or a filter value only,
    so apostrophes inside words ("don't") stay literal."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        chars: list[str] = []
        quoted, op = False, None
        while i < n and not text[i].isspace():
            ch = text[i]
            at_value = op is not None and len(chars) == op + 1
            if ch in _QUOTES and (not chars or at_value):
                closers, i = _QUOTES[ch], i + 1
                while i < n and text[i] not in closers:
                    if text[i] == "\\" and i + 1 < n and (text[i + 1] in closers or text[i + 1] == "\\"):
                        i += 1
                    chars.append(text[i])
                    i += 1
                if i >= n:
                    raise UnclosedQuote(ch)
                quoted, i = True, i + 1
                continue
            if ch in "=:" and op is None:
                op = len(chars)
            chars.append(ch)
            i += 1
        tokens.append(Token("".join(chars), quoted, op))
    return tokens


def quote(text: str, *, always: bool = False) -> str:
    """`text` as one grammar token: double-quoted when it holds spaces or quotes (or `always`)."""
    if always or not text or any(ch.isspace() or ch in _QUOTES or ch in "\\=:" for ch in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
