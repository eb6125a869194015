"""Reading an SMS reply: a score from 0 to 10, an opt-out/opt-in/help keyword, or something unclear.

:func:`parse_reply` is pure and total: any text gives a :data:`Reply`, never an exception, in time linear in
the length of the text (one tokenising pass, no backtracking regular expressions).

Opt-out, opt-in and help come first (:mod:`campaigns.replies.keywords`): the keywords of every shipped
locale as the whole reply, case, accents, punctuation, emoji and courtesy words ignored ("Stop.", " STOP! ",
"opt-out", "ARRÊT svp", "退订"), and revocation phrases anywhere in a reply ("Please stop texting me",
"9, but remove me from your list"). A bare keyword inside a sentence is not one ("the app won't stop crashing").

Scores are read from:

- digits anywhere, including full-width ("９"), other scripts' decimal digits and circled numbers (NFKC);
  "9/10", "9 / 10", "8 out of 10", "7 de 10", "8 sur 10", "9 von 10", "9 trên 10" count as the first number;
- number words 0-10 of every shipped locale (English, Spanish, French, German, Portuguese, Dutch, Italian,
  Finnish, Vietnamese; accents optional when typed without any), and Chinese numerals ("九", "十", "九分",
  "十分", "满分").

A number *word* must look like an answer, because these words also occur in prose: it must end the reply or
be followed by punctuation, "points" or "out of ten" ("I'd say nine", "Nine!!", "ten out of ten"), so "two
thumbs up" and "zero complaints" are not scores. Words that are also common words in some language ("one",
French "un"/"neuf", Italian "sei", Vietnamese "một"/"không"/"năm"...) count only as the whole reply or with
"out of ten". Chinese numerals count standing alone or before 分 ("points"); 十分 before another character is
the adverb "very" (十分满意, "very satisfied") and no score.

Numbers outside the scale: "11", "-1", "100", "eleven", "mười một", "十一", "4/5" or "4 out of 5" (another
scale), long digit strings, years and phone numbers written in groups ("+1 555 123 4567") are out of range.

Several numbers: the same value repeated is that value ("10/10, ten out of ten!"); "7 or 8", "7-8", "between
7 and 8", "seven or eight", "7.5", "7 and a half" and "七八分" are ambiguous; a leading number followed by a
comment is the score ("9 great support, answered within 2 hours" -> 9) unless the next number follows it
closely or after "or"/"and"/"maybe" and could itself be a score; anything else with several values is
ambiguous, or out of range when none of them is in 0-10. Ordinals ("the 2nd time") are no numbers.

Known limits, by design on the safe side (an unclear reply costs one clarification; a wrong score raises a
false detractor alert): a number word inside a sentence ("nine great support") is not read, and a digit in a
comment without a score ("waited 3 days") is read as that score.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from campaigns.messages.locales import language_of
from campaigns.replies.keywords import consent_intent
from campaigns.replies.number_words import (
    AR_TEENS,
    CJK_AFTER,
    CJK_BEFORE,
    CJK_BIG,
    CJK_DIGITS,
    CJK_FULL_MARKS,
    CJK_NUMERALS,
    CONNECTORS,
    EXACT_WORDS,
    HALF_FILLERS,
    HALF_WORDS,
    LOOSE_WORDS,
    MINUTE_OR_MONEY,
    OF_WORDS,
    ORDINAL_ENDINGS,
    OUT_OF_TEN_WORDS,
    POINT_WORDS,
    VI_TEN,
    VI_TENS,
    VI_UNITS_AFTER_TEN,
    Word,
)

__all__ = [
    "AMBIGUOUS",
    "EMPTY",
    "HELP_KEYWORDS",
    "NO_NUMBER",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "OUT_OF_RANGE",
    "Help",
    "OptIn",
    "OptOut",
    "Reply",
    "Score",
    "Unclear",
    "UnclearReason",
    "parse_reply",
]


@dataclass(frozen=True)
class Score:
    value: int  # 0..10


@dataclass(frozen=True)
class OptOut:
    keyword: str  # canonical, upper case: "STOP", "ARRET", "STOP TEXTING"
    free_text: bool = False  # a revocation phrase in a longer reply, not a keyword reply


@dataclass(frozen=True)
class OptIn:
    keyword: str


@dataclass(frozen=True)
class Help:
    keyword: str


# Why a reply is unclear; every one deserves a clarification ("reply with a number from 0 to 10").
UnclearReason: TypeAlias = Literal["empty", "out_of_range", "ambiguous", "no_number"]
EMPTY: Final = "empty"  # nothing but spaces, punctuation or emoji
OUT_OF_RANGE: Final = "out_of_range"  # a number, but not in 0..10 ("11", "-1", "100", "4/5", a phone number)
AMBIGUOUS: Final = "ambiguous"  # several candidate scores ("7 or 8", "7-8") or a fraction ("7.5")
NO_NUMBER: Final = "no_number"  # words without a score ("great service!")


@dataclass(frozen=True)
class Unclear:
    reason: UnclearReason  # EMPTY, OUT_OF_RANGE, AMBIGUOUS or NO_NUMBER


Reply: TypeAlias = Score | OptOut | OptIn | Help | Unclear

# Twilio's default single-word keywords (its own STOP filtering); every shipped locale adds its own words.
OPT_OUT_KEYWORDS: Final = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS: Final = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS: Final = frozenset({"HELP", "INFO"})

_SIGNS: Final = frozenset("-−")
_FULL_MARK_EMOJI: Final = "\U0001f51f"  # 🔟
_PHONE_DIGITS: Final = 7  # digit groups adding up to this many digits are a phone number, not scores
_OUT: Final = 1000  # stands for any value far outside 0..10
_ARABIC_SEPARATORS: Final = str.maketrans({"\u066b": ".", "\u066c": ","})  # ٫ decimal, ٬ thousands
_TATWEEL: Final = "\u0640"


# --- tokens -------------------------------------------------------------------------------------------------

_CJK_CLASS = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Every alternative consumes at least one character and none can backtrack into another: linear time.
_TOKEN = re.compile(
    rf"(?P<num>\d+(?:[.,]\d+)*)|(?P<cjk>[{_CJK_CLASS}]+)|(?P<word>[^\W\d_{_CJK_CLASS}]+)|(?P<sym>\S)"
)


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "cjk", "word" or "sym"
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Mention:
    """A candidate score: value None is a fraction or an unclear run ("7.5", "七八")."""

    value: int | None
    first: int  # token indexes, inclusive
    last: int
    leading: bool  # nothing but symbols before it

    @property
    def in_range(self) -> bool:
        return self.value is not None and 0 <= self.value <= 10


def parse_reply(text: str, locale: str | None = None) -> Reply:
    """What an inbound SMS says: a Score, an OptOut/OptIn/Help keyword, or Unclear with a reason.

    ``locale`` (the contact's, when known) only settles a word that means different numbers in different
    languages; words of every language are recognised whatever it is.
    """
    keyword = _keyword(text)
    normalized = _normalize(text)
    if keyword is not None:
        return keyword
    if not any(char.isalnum() for char in normalized):
        return Unclear(EMPTY)
    tokens = [
        _Token(match.lastgroup or "sym", match.group(), match.start(), match.end())
        for match in _TOKEN.finditer(normalized)
    ]
    language = language_of(locale or "")
    mentions = list(_mentions(tokens, language))
    return _decide(mentions, tokens)


def _normalize(text: str) -> str:
    """NFKC (full-width and circled digits, ligatures), case folded, fractions spelled out, no format chars.

    Arabic loses its vowel marks and the stretching tatweel ("تِسْعَة", "ثمـانية"), which would split a word,
    and its decimal and thousands separators become "." and "," ("٧٫٥" is a fraction).
    """
    if not text.isascii():
        text = text.replace(_FULL_MARK_EMOJI, " 10 ").translate(_ARABIC_SEPARATORS)
        text = "".join(_fraction_as_word(char) for char in text)
        text = unicodedata.normalize("NFKC", text)
        text = "".join(char for char in text if not _is_dropped(char))
    return text.casefold()


def _is_dropped(char: str) -> bool:
    """Format characters (zero-width joiners, direction marks) and Arabic vowel marks and tatweel."""
    category = unicodedata.category(char)
    return category == "Cf" or ("\u0610" <= char <= "\u06ff" and (category == "Mn" or char == _TATWEEL))


def _fraction_as_word(char: str) -> str:
    """A vulgar fraction ("½") becomes the word " half ", so "7½" is a fraction, not 71."""
    if char.isascii() or unicodedata.category(char) != "No":
        return char
    value = unicodedata.numeric(char, None)
    if value is not None and value != int(value):
        return " half "
    return char


def _keyword(text: str) -> OptOut | OptIn | Help | None:
    intent = consent_intent(text)
    if intent is None:
        return None
    if intent.kind == "opt_out":
        return OptOut(intent.keyword, free_text=intent.free_text)
    if intent.kind == "opt_in":
        return OptIn(intent.keyword)
    return Help(intent.keyword)


# --- finding candidate scores -------------------------------------------------------------------------------


def _mentions(tokens: list[_Token], language: str) -> Iterator[_Mention]:
    content = [index for index, token in enumerate(tokens) if token.kind != "sym"]
    first_content = content[0] if content else -1
    index = 0
    while index < len(tokens):
        token = tokens[index]
        leading = index == first_content
        if token.kind == "num":
            if _is_ordinal(tokens, index):
                index += 2
                continue
            mention = _number_mention(tokens, index, leading)
            yield mention
            index = mention.last + 1
        elif token.kind == "word":
            found = _word_mention(tokens, index, leading, content, language)
            if found is not None:
                yield found
                index = found.last + 1
            else:
                index = _hyphen_group_end(tokens, index) + 1
        elif token.kind == "cjk":
            yield from _cjk_mentions(token.text, index, leading)
            index += 1
        else:
            index += 1


def _is_ordinal(tokens: list[_Token], index: int) -> bool:
    after = index + 1
    return (
        after < len(tokens)
        and tokens[after].kind == "word"
        and tokens[after].text in ORDINAL_ENDINGS
        and _adjacent(tokens, index, after)
    )


def _digits_value(text: str) -> int | None:
    """Value of a digit token; _OUT for anything long, None for a fraction in range ("7.5")."""
    parts = re.split(r"[.,]", text)
    if len(parts) > 2:
        return _OUT  # "1.2.3", "12.10.2023"
    whole = parts[0].lstrip("0") or "0"
    if len(whole) > 3:
        return _OUT  # never int() a long string: "12345678901234567890..."
    value = int(whole)
    if len(parts) == 2:
        fraction = parts[1]
        if len(fraction) >= 3:
            return _OUT  # "1,000" is a thousand
        if fraction.strip("0"):
            return None if value < 10 else _OUT  # "7.5" is between two scores; "10.5" is beyond them
    return value


def _adjacent(tokens: list[_Token], left: int, right: int) -> bool:
    return left >= 0 and right < len(tokens) and tokens[left].end == tokens[right].start


def _number_mention(tokens: list[_Token], index: int, leading: bool) -> _Mention:
    phone_end = _phone_number_end(tokens, index)
    if phone_end is not None:
        return _Mention(_OUT, index, phone_end, leading)
    value = _digits_value(tokens[index].text)
    # A minus sign right before the digits, not between two numbers ("7-8"): "-1" is below the scale.
    before = index - 1
    if (
        before >= 0
        and tokens[before].kind == "sym"
        and tokens[before].text in _SIGNS
        and _adjacent(tokens, before, index)
        and not (before >= 1 and tokens[before - 1].kind != "sym" and _adjacent(tokens, before - 1, before))
        and (value is None or value > 0)
    ):
        value = -1
    return _with_suffixes(tokens, _Mention(value, index, index, leading))


def _phone_number_end(tokens: list[_Token], index: int) -> int | None:
    """Last token of a phone number written in digit groups ("+1 (555) 123-4567"), or None."""
    digits, end, position = len(tokens[index].text), index, index + 1
    while position < len(tokens):
        token = tokens[position]
        if token.kind == "num":
            digits += len(token.text)
            end = position
        elif not (token.kind == "sym" and token.text in "-().+"):
            break
        position += 1
    return end if end > index and digits >= _PHONE_DIGITS else None


def _is_ten(token: _Token) -> bool:
    if token.kind == "num":
        return _digits_value(token.text) == 10
    if token.kind == "word":
        entry = _lookup(token.text)
        return entry is not None and 10 in entry.values.values()
    return token.kind == "cjk" and token.text == "十"


def _denominator(tokens: list[_Token], after: int) -> tuple[int, int | None] | None:
    """(last token, denominator) of "/ 10", "out of ten", "de 10", "kymmenestä" after token ``after``."""
    position = after + 1
    if position >= len(tokens):
        return None
    token = tokens[position]
    if token.kind == "sym" and token.text in "/⁄":
        if position + 1 < len(tokens) and tokens[position + 1].kind == "num":
            return position + 1, _digits_value(tokens[position + 1].text)
        if position + 1 < len(tokens) and _is_ten(tokens[position + 1]):
            return position + 1, 10
        return None
    if token.kind != "word":
        return None
    if token.text in OUT_OF_TEN_WORDS:
        return position, 10
    if token.text == "out" and position + 1 < len(tokens) and tokens[position + 1].text == "of":
        # "out of N": a denominator whatever N is ("4 out of 5" is on another scale).
        if position + 2 < len(tokens):
            target = tokens[position + 2]
            if _is_ten(target):
                return position + 2, 10
            if target.kind == "num":
                return position + 2, _digits_value(target.text)
        return None
    if token.text in OF_WORDS and position + 1 < len(tokens) and _is_ten(tokens[position + 1]):
        return position + 1, 10
    return None


def _with_suffixes(tokens: list[_Token], mention: _Mention) -> _Mention:
    """Extend a mention over "/10", "out of ten", "points" and "and a half"; adjust its value."""
    value, last = mention.value, mention.last
    denominator = _denominator(tokens, last)
    if denominator is not None:
        last, scale = denominator
        if scale != 10:
            value = _OUT  # "10/5", "4 out of 5": another scale; "7/8" reads as a fraction too
    if last + 1 < len(tokens) and _is_points(tokens[last + 1]):
        last += 1
    position = last + 1
    while position < min(last + 4, len(tokens)) and tokens[position].text in HALF_FILLERS:
        position += 1
    if position < len(tokens) and tokens[position].text in HALF_WORDS:
        # "7 and a half", "sept et demi", "7½": between two scores (and beyond the scale after 10)
        value, last = (None if value is not None and 0 <= value < 10 else _OUT), position
    return _Mention(value, mention.first, last, mention.leading)


def _is_points(token: _Token) -> bool:
    """Whether the token says "points" in some language ("punkte", "điểm", 分)."""
    if token.kind == "word":
        return token.text in POINT_WORDS
    return token.kind == "cjk" and token.text.startswith("分")


def _lookup(word: str) -> Word | None:
    entry = EXACT_WORDS.get(word)
    if entry is None and (word.isascii() or unicodedata.normalize("NFD", word) == word):
        entry = LOOSE_WORDS.get(word)  # typed without accents ("chin") or without hamza ("اربعة")
    return entry


def _word_value(entry: Word, language: str) -> int | None:
    values = set(entry.values.values())
    if len(values) == 1:
        return values.pop()
    if language in entry.values:
        return entry.values[language]
    return None  # different numbers in different languages and no locale to decide: ask


def _hyphen_group_end(tokens: list[_Token], index: int) -> int:
    """Last token of words joined by hyphens without spaces ("dix-neuf", "well-known")."""
    end = index
    while (
        end + 2 < len(tokens)
        and tokens[end + 1].text in "-‐"
        and tokens[end + 2].kind == "word"
        and _adjacent(tokens, end, end + 1)
        and _adjacent(tokens, end + 1, end + 2)
    ):
        end += 2
    return end


def _word_mention(
    tokens: list[_Token], index: int, leading: bool, content: list[int], language: str
) -> _Mention | None:
    token = tokens[index]
    if (
        index >= 2
        and tokens[index - 1].text in "-‐"
        and tokens[index - 2].kind == "word"
        and _adjacent(tokens, index - 2, index - 1)
        and _adjacent(tokens, index - 1, index)
    ):
        return None  # the tail of a hyphenated word; its head decided already
    entry = _lookup(token.text)
    if entry is None:
        return None
    group_end = _hyphen_group_end(tokens, index)
    if group_end > index:
        # "dix-neuf" (19), "twenty-one": a compound number; "seven-eight": two candidates.
        parts = [_lookup(tokens[position].text) for position in range(index, group_end + 1, 2)]
        if any(part is None for part in parts):
            return None
        values = [_word_value(part, language) for part in parts if part is not None]
        ambiguous = all(value is not None and 0 <= value < 10 for value in values)
        return _Mention(None if ambiguous else _OUT, index, group_end, leading)
    value = _word_value(entry, language)
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    if token.text in VI_TEN and following is not None and following.text in VI_UNITS_AFTER_TEN:
        return _Mention(_OUT, index, index + 1, leading)  # "mười một" is 11
    if following is not None and (following.text in VI_TENS or following.text in AR_TEENS):
        return _Mention(_OUT, index, index + 1, leading)  # "hai mươi" is 20, "تسعة عشر" 19
    mention = _with_suffixes(tokens, _Mention(value, index, index, leading))
    with_denominator = _denominator(tokens, index) is not None
    whole_reply = content[0] == index and content[-1] == mention.last
    after = tokens[mention.last + 1] if mention.last + 1 < len(tokens) else None
    if after is not None and after.text in CONNECTORS and mention.last + 2 < len(tokens):
        other = tokens[mention.last + 2]
        if other.kind == "num" or (other.kind == "word" and _lookup(other.text) is not None):
            return _Mention(None, index, mention.last + 2, leading)  # "seven or eight", "one or two"
    if entry.weak:
        return mention if whole_reply or with_denominator else None
    if after is None or after.kind == "sym" or mention.last > index:
        return mention
    return None


def _cjk_mentions(run: str, index: int, leading: bool) -> Iterator[_Mention]:
    """Chinese numerals in a run of ideographs that read as a score."""
    for full in CJK_FULL_MARKS:
        if full in run:
            yield _Mention(10, index, index, leading and run.startswith(full))
    position = 0
    while position < len(run):
        if run[position] not in CJK_NUMERALS:
            position += 1
            continue
        start = position
        while position < len(run) and run[position] in CJK_NUMERALS:
            position += 1
        numeral = run[start:position]
        before = run[start - 1] if start > 0 else None
        after = run[position] if position < len(run) else None
        if after == "分":  # "points": a score whatever comes before ("我觉得九分")
            next_char = run[position + 1] if position + 1 < len(run) else None
            if next_char is not None and next_char in MINUTE_OR_MONEY:
                continue
            adverb = numeral == "十" and next_char is not None and next_char not in CJK_AFTER
            if adverb and (before is None or before not in CJK_BEFORE):
                continue  # 十分满意, 十分感谢: the adverb "very"
        elif (before is not None and before not in CJK_BEFORE) or (
            after is not None and after not in CJK_AFTER
        ):
            continue  # "第一" (first), "一般" (so-so), "一直" (always)
        yield _Mention(_cjk_value(numeral), index, index, leading and start == 0)


def _cjk_value(numeral: str) -> int | None:
    if len(numeral) > 6 or any(char in CJK_BIG for char in numeral):
        return _OUT
    if "十" in numeral:
        tens, _, ones = numeral.partition("十")
        if "十" in ones or len(tens) > 1 or len(ones) > 1:
            return _OUT
        value = (CJK_DIGITS[tens] if tens else 1) * 10 + (CJK_DIGITS[ones] if ones else 0)
        return value
    if len(numeral) == 1:
        return CJK_DIGITS[numeral]
    return None  # "七八" (seven or eight), "一二三"


# --- deciding -----------------------------------------------------------------------------------------------


def _decide(mentions: list[_Mention], tokens: list[_Token]) -> Reply:
    if not mentions:
        return Unclear(NO_NUMBER)
    values = {mention.value for mention in mentions}
    if len(values) == 1:
        return _single(mentions[0])
    first, second = mentions[0], mentions[1]
    value = first.value
    if first.leading and value is not None and 0 <= value <= 10 and _loosely_followed(first, second, tokens):
        return Score(value)
    if not any(mention.in_range or mention.value is None for mention in mentions):
        return Unclear(OUT_OF_RANGE)
    return Unclear(AMBIGUOUS)


def _single(mention: _Mention) -> Reply:
    if mention.value is None:
        return Unclear(AMBIGUOUS)
    if 0 <= mention.value <= 10:
        return Score(mention.value)
    return Unclear(OUT_OF_RANGE)


def _loosely_followed(first: _Mention, second: _Mention, tokens: list[_Token]) -> bool:
    """Whether ``second`` is in a comment after the score rather than an alternative to it.

    "9 great support, answered in 2 hours": at least two words in between and none of them "or", "and",
    "to", "maybe" ... ("7 or maybe 8", "7 and perhaps 8"), unless the second number cannot be a score anyway
    ("9, fast and 24/7").
    """
    between = _words(tokens[position] for position in range(first.last + 1, second.first))
    if len(between) < 2:
        return False
    if second.value is not None and not 0 <= second.value <= 10:
        return True  # "9 great support and 24/7 help": no alternative score
    return not any(word in CONNECTORS for word in between)


def _words(tokens: Iterable[_Token]) -> list[str]:
    return [token.text for token in tokens if token.kind in ("word", "cjk")]
