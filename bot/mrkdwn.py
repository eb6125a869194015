"""Text that people outside the team wrote (names, comments, external ids, properties, emails and phones, masked
or not), made safe to show in Slack mrkdwn: the one place every message, answer and view takes it from.

Slack reads `&`, `<` and `>` as its own control characters: `<!channel>` pings a whole channel and
`<https://evil.example|your bank>` is a link under any label. Escaped as Slack asks (`&amp;`, `&lt;`, `&gt;`,
https://api.slack.com/reference/surfaces/formatting#escaping), they are shown as typed. Escaped text is still
"automatically parsed" unless its text object says `verbatim: true`: bare URLs, `#channel` names and @mentions
would become links. So a text object with customer text in it is built by `verbatim()`; Slack's formatting and
our own manual strings in it (`<@U123>`, `<!date^...>`) still work there.

Customer text can also move or turn around what follows it: a line break in a name adds a line of its choosing
to a list, and an explicit bidi embedding, override or isolate (U+202A-202E, U+2066-2069) left open shows the
rest of the line reversed ("01/3" for 3/10). `customer_text` is for one line (names, ids, values, inline
comments): line breaks become spaces and those bidi controls are dropped. `quote` keeps a text's lines, each one
marked as quoted, so none reads like our own; it drops the bidi controls too.

Customer text is cut before it is escaped, on a boundary between grapheme clusters (what a reader sees as one
character: an emoji with its skin tone, a letter with its accent, a flag), and measured after: the result fits
the limit Slack counts and never ends in half an escape (`&am`) or half a character.
"""

from __future__ import annotations

from typing import Any

import regex

ELLIPSIS = "…"
_GRAPHEME = regex.compile(r"\X")  # an extended grapheme cluster (Unicode UAX #29)


# Explicit embeddings, overrides, their closing PDF, isolates and their closing PDI. The implicit marks (LRM, RLM,
# ALM) change no more than the character next to them and stay.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def without_bidi_controls(text: str) -> str:
    return text.translate(_BIDI_CONTROLS)


def one_line(text: str) -> str:
    """`text` on one line, without bidi controls: every line break Python knows (CR, LF, VT, FF, NEL, U+2028,
    U+2029 ...) becomes a space."""
    return " ".join(without_bidi_controls(text).splitlines())


def escape(text: str) -> str:
    """Slack's three control characters, escaped as its API asks; nothing else is touched."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(text: str, limit: int, extra_per_line: int = 0) -> str:
    """The longest escaped prefix of `text` on a grapheme boundary that fits `limit` with an ellipsis, each
    line break costing `extra_per_line` more (a quote marker). Reads no further than the cut."""
    assert limit >= 1, limit
    if len(text) <= limit:
        whole = escape(text)
        if len(whole) + extra_per_line * whole.count("\n") <= limit:
            return whole
    budget = limit - len(ELLIPSIS)
    parts: list[str] = []
    for match in _GRAPHEME.finditer(text):
        piece = escape(match.group())
        cost = len(piece) + (extra_per_line if piece == "\n" else 0)
        if cost > budget:
            break
        parts.append(piece)
        budget -= cost
    return "".join(parts) + ELLIPSIS


def customer_text(value: object, limit: int) -> str:
    """`value` as mrkdwn that shows it as typed, in at most `limit` characters (escapes included), cut with an
    ellipsis, on one line (`one_line`). Put the result in a `verbatim()` text object."""
    return _fit(one_line(str(value)), limit)


def quote(value: object, limit: int, *, marker: str = ">") -> str:
    """Customer text as a block quote, every line marked, in at most `limit` characters."""
    text = "\n".join(without_bidi_controls(str(value)).splitlines())
    return marker + _fit(text, limit - len(marker), len(marker)).replace("\n", "\n" + marker)


def cut(text: str, limit: int) -> str:
    """At most `limit` characters of plain text, cut on a grapheme boundary with an ellipsis; for plain_text
    objects, which Slack shows as typed and does not parse."""
    if len(text) <= limit:
        return text
    budget, end = limit - len(ELLIPSIS), 0
    for match in _GRAPHEME.finditer(text):
        if match.end() > budget:
            break
        end = match.end()
    return text[:end] + ELLIPSIS


def verbatim(text: str) -> dict[str, Any]:
    """A mrkdwn text object in which Slack links no bare URL, #channel or @name: for text with customer text."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}
