"""Customer text as Slack mrkdwn: escaped as Slack asks, cut before escaping on whole characters as people see
them (grapheme clusters), measured after escaping, and put in verbatim text objects."""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st

from bot.mrkdwn import customer_text, cut, one_line, quote, verbatim

ESCAPED = re.compile(r"(?:[^&<>]|&amp;|&lt;|&gt;)*")
# Explicit bidi embeddings, overrides and isolates, and the PDF and PDI that close them.
BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def test_slack_control_characters_are_escaped_and_nothing_else() -> None:
    assert customer_text("<!channel> & <https://evil|bank> &amp; *bold*", 100) == (
        "&lt;!channel&gt; &amp; &lt;https://evil|bank&gt; &amp;amp; *bold*"
    )
    assert customer_text(42, 10) == "42"


def test_a_text_of_ampersands_is_cut_between_escapes_within_the_limit() -> None:
    for limit in range(1, 40):
        shown = customer_text("&" * 5000, limit)
        assert len(shown) <= limit and re.fullmatch(r"(&amp;)*…", shown), (limit, shown)
    assert customer_text("&" * 5000, 12) == "&amp;&amp;…"


def test_cuts_keep_grapheme_clusters_whole() -> None:
    thumbs = "👍🏽"  # a thumb and its skin tone: one character to the reader
    assert cut(thumbs * 10, 4) == thumbs + "…"
    assert cut(thumbs * 10, 5) == thumbs * 2 + "…"
    family = "👨\u200d👩\u200d👧"
    assert cut("a" + family + "b", 6) == "a…"
    assert cut("e\u0301" * 10, 4) == "e\u0301…"  # é written as e and a combining accent
    assert cut("🇩🇪🇫🇷🇮🇹", 4) == "🇩🇪…"  # flags are pairs of regional indicators
    assert cut("short", 5) == "short"


def test_quotes_mark_every_line_within_the_limit() -> None:
    assert quote("one\r\n<two>\n\nthree", 100) == ">one\n>&lt;two&gt;\n>\n>three"
    assert quote("", 10) == ">"
    assert quote("a\nb", 100, marker="> ") == "> a\n> b"
    many = quote("\n" * 5000, 100)
    assert len(many) <= 100 and many.endswith("…")


def test_one_line_text_has_no_line_breaks_nor_bidi_controls() -> None:
    assert customer_text("Eve\n• *Big* 10/10\r\nx\u2028y\x85z", 100) == "Eve • *Big* 10/10 x y z"
    assert customer_text("\u202eEve\u2066 \u2069\u202c", 100) == "Eve "
    assert (
        customer_text("\u200f\u05e9\u05dc\u05d5\u05dd", 100) == "\u200f\u05e9\u05dc\u05d5\u05dd"
    )  # RLM stays
    assert one_line("a\n\nb") == "a  b"
    assert quote("\u202eok\n\u2067x", 100) == ">ok\n>x"


def test_verbatim_text_objects() -> None:
    assert verbatim("x") == {"type": "mrkdwn", "text": "x", "verbatim": True}


@given(st.text(), st.integers(min_value=1, max_value=60))
def test_any_text_is_shown_as_typed_on_one_line_up_to_the_cut(text: str, limit: int) -> None:
    shown = customer_text(text, limit)
    assert len(shown) <= limit and ESCAPED.fullmatch(shown)
    assert len(shown.splitlines()) <= 1 and not BIDI_CONTROLS.intersection(shown)
    typed = one_line(text)
    if shown.endswith("…") and html.unescape(shown) != typed:
        assert typed.startswith(html.unescape(shown[:-1]))
    else:
        assert html.unescape(shown) == typed


@given(st.text(), st.integers(min_value=2, max_value=60))
def test_any_quote_stays_within_the_limit(text: str, limit: int) -> None:
    shown = quote(text, limit)
    assert len(shown) <= limit and shown.startswith(">")
    assert all(line.startswith(">") for line in shown.split("\n"))
