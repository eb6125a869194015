from __future__ import annotations

import dataclasses
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from campaigns.replies.number_words import NUMBER_WORDS
from campaigns.replies.parser import (
    AMBIGUOUS,
    EMPTY,
    HELP_KEYWORDS,
    NO_NUMBER,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    OUT_OF_RANGE,
    Help,
    OptIn,
    OptOut,
    Reply,
    Score,
    Unclear,
    UnclearReason,
    parse_reply,
)

# Written out here rather than taken from the parser: 0..10 in every shipped locale.
WORDS = {
    "en": "zero one two three four five six seven eight nine ten",
    "es": "cero uno dos tres cuatro cinco seis siete ocho nueve diez",
    "fr": "zéro un deux trois quatre cinq six sept huit neuf dix",
    "de": "null eins zwei drei vier fünf sechs sieben acht neun zehn",
    "pt": "zero um dois três quatro cinco seis sete oito nove dez",
    "nl": "nul één twee drie vier vijf zes zeven acht negen tien",
    "it": "zero uno due tre quattro cinque sei sette otto nove dieci",
    "fi": "nolla yksi kaksi kolme neljä viisi kuusi seitsemän kahdeksan yhdeksän kymmenen",
    "vi": "không một hai ba bốn năm sáu bảy tám chín mười",
    "zh-Hans": "零 一 二 三 四 五 六 七 八 九 十",
    "zh-Hant": "〇 一 兩 三 四 五 六 七 八 九 十",
    "ar": "صفر واحد اثنان ثلاثة أربعة خمسة ستة سبعة ثمانية تسعة عشرة",
}
WORD_CASES = [
    (locale, value, word) for locale, words in WORDS.items() for value, word in enumerate(words.split())
]
# Words that are also everyday words somewhere ("one", "un", "neuf" = new, "sei" = you are, "năm" = year...):
# they count as the whole reply or before "out of ten", not at the end of a sentence.
WEAK = {
    *("one", "un", "uno", "um", "neuf", "null", "nul", "due", "sei", "otto", "không", "một", "ba", "năm"),
    "واحد",  # "someone" in Arabic
}
UNCLEAR_REASONS = {EMPTY, OUT_OF_RANGE, AMBIGUOUS, NO_NUMBER}


def strip_accents(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).replace("đ", "d")


# --- scores -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("9", 9),
        (" 9 ", 9),
        ("\n9\n", 9),
        ("0", 0),
        ("00", 0),
        ("10", 10),
        ("9/10", 9),
        ("9 / 10", 9),
        ("10/10", 10),
        ("0/10", 0),
        ("10!", 10),
        ("9.", 9),
        ("10.0", 10),
        ("I'd give you an 8", 8),
        ("I’d say 7", 7),
        ("8 out of 10", 8),
        ("8 outta 10", 8),
        ("a solid 8 out of ten", 8),
        ("nine", 9),
        ("Nine!!", 9),
        ("NINE", 9),
        ("ten out of ten", 10),
        ("Ten out of 10!", 10),
        ("I'd say nine", 9),
        ("I'd give you a nine.", 9),
        ("nine points", 9),
        ("10 points", 10),
        ("Nine, great support", 9),
        ("9 great support", 9),
        ("9 - great support", 9),
        ("9, answered within 2 hours", 9),
        ("9 great support and 24/7 help", 9),
        ("10, half the staff were rude", 10),
        ("10/10 would recommend, ten out of ten", 10),
        ("👍 9", 9),
        ("9️⃣", 9),
        ("🔟", 10),
        ("score: 7", 7),
        # full-width and other digits
        ("９", 9),
        ("１０", 10),
        ("９／１０", 9),
        ("⑨", 9),
        ("٩", 9),
        # Chinese
        ("九", 9),
        ("十", 10),
        ("十分", 10),
        ("九分", 9),
        ("满分", 10),
        ("滿分", 10),
        ("零分", 0),
        ("两分", 2),
        ("我给九分", 9),
        ("我覺得九分", 9),
        ("打十分吧", 10),
        ("9分", 9),
        ("10分，服务很好", 10),
        ("九分！服务很好", 9),
        # the other locales, accents optional
        ("chín", 9),
        ("chin", 9),
        ("mười", 10),
        ("muoi", 10),
        ("9 trên 10", 9),
        ("chín điểm", 9),
        ("yhdeksän", 9),
        ("yhdeksan", 9),
        ("kymmenen", 10),
        ("yhdeksän kymmenestä", 9),
        ("ysi", 9),
        ("kymppi", 10),
        ("nueve", 9),
        ("Nueve de diez", 9),
        ("dix", 10),
        ("dix sur dix", 10),
        ("zéro", 0),
        ("zero", 0),
        ("neun", 9),
        ("neun von zehn", 9),
        ("fünf", 5),
        ("funf", 5),
        ("fuenf", 5),
        ("acht", 8),
        ("negen", 9),
        ("acht op tien", 8),
        ("één", 1),
        ("een", 1),
        ("nove", 9),
        ("otto su dieci", 8),
        ("dez", 10),
        ("três", 3),
        ("tres", 3),
        ("sete de dez", 7),
        # Arabic: Arabic-Indic and Extended Arabic-Indic digits, number words with or without hamza
        ("٩", 9),
        ("١٠", 10),
        ("٠", 0),
        ("۹", 9),
        ("۱۰", 10),
        ("٩/١٠", 9),
        ("٩ من ١٠", 9),
        ("٨ على ١٠", 8),
        ("١٠ من ١٠!", 10),
        ("٩، خدمة ممتازة", 9),
        ("تسعة", 9),
        ("تسعه", 9),
        ("اثنين", 2),
        ("اربعة", 4),
        ("عشرة من عشرة", 10),
        ("تسعة من عشرة", 9),
        ("أعطيكم تسعة", 9),
        ("تِسْعَة", 9),
        ("ثمـانية", 8),
        ("٧ نقاط", 7),
        ("٩ درجات", 9),
        ("تسعة؟", 9),
    ],
)
def test_scores(reply: str, value: int) -> None:
    assert parse_reply(reply) == Score(value)


@pytest.mark.parametrize(("locale", "value", "word"), WORD_CASES)
def test_every_number_word_of_every_locale(locale: str, value: int, word: str) -> None:
    expected = Score(value)
    for variant in (word, word.upper(), word.title(), f" {word}! ", f"{word}."):
        assert parse_reply(variant) == expected, variant
        assert parse_reply(variant, locale) == expected, variant
        assert parse_reply(variant, "en") == expected, variant  # whatever the contact's locale
    if word.isascii() or locale.startswith("zh"):
        return
    assert parse_reply(strip_accents(word)) == expected, strip_accents(word)


@pytest.mark.parametrize(("locale", "value", "word"), WORD_CASES)
def test_number_words_in_a_short_answer(locale: str, value: int, word: str) -> None:
    if locale.startswith("zh"):
        assert parse_reply(f"{word}分") == Score(value)
        assert parse_reply(f"我给{word}分") == Score(value)
        return
    assert parse_reply(f"{word} / 10") == Score(value)
    assert parse_reply(f"{word}/10") == Score(value)
    if word not in WEAK:
        assert parse_reply(f"I'd say {word}") == Score(value)


def test_number_words_cover_every_value() -> None:
    assert set(NUMBER_WORDS) == set(range(11))
    for value, words in NUMBER_WORDS.items():
        assert {WORDS[locale].split()[value] for locale in WORDS if not locale.startswith("zh")} <= words


# --- unclear ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", EMPTY),
        ("   ", EMPTY),
        ("\n\t", EMPTY),
        ("😀", EMPTY),
        ("👍👍", EMPTY),
        ("?!", EMPTY),
        ("...", EMPTY),
        # several candidates
        ("7 or 8", AMBIGUOUS),
        ("7-8", AMBIGUOUS),
        ("7 - 8", AMBIGUOUS),
        ("7–8", AMBIGUOUS),
        ("between 7 and 8", AMBIGUOUS),
        ("7 or maybe 8", AMBIGUOUS),
        ("7, 8", AMBIGUOUS),
        ("0-10", AMBIGUOUS),
        ("seven or eight", AMBIGUOUS),
        ("seven-eight", AMBIGUOUS),
        ("sept ou huit", AMBIGUOUS),
        ("one or two", AMBIGUOUS),
        ("two or three things", AMBIGUOUS),
        ("7.5", AMBIGUOUS),
        ("7,5", AMBIGUOUS),
        ("7½", AMBIGUOUS),
        ("7 and a half", AMBIGUOUS),
        ("sept et demi", AMBIGUOUS),
        ("10 and a half", OUT_OF_RANGE),
        ("七八分", AMBIGUOUS),
        ("九到十", AMBIGUOUS),
        ("I'd say 8 but 2 of your agents were rude", AMBIGUOUS),
        # out of the scale
        ("11", OUT_OF_RANGE),
        ("-1", OUT_OF_RANGE),
        ("−1", OUT_OF_RANGE),
        ("100", OUT_OF_RANGE),
        ("100%", OUT_OF_RANGE),
        ("10/5", OUT_OF_RANGE),
        ("4/5", OUT_OF_RANGE),
        ("4 out of 5", OUT_OF_RANGE),
        ("11/10", OUT_OF_RANGE),
        ("10.5", OUT_OF_RANGE),
        ("1,000", OUT_OF_RANGE),
        ("2023", OUT_OF_RANGE),
        ("12/10/2023", OUT_OF_RANGE),
        ("+1 555 123 4567", OUT_OF_RANGE),
        ("(555) 123-4567", OUT_OF_RANGE),
        ("0049 170 1234567", OUT_OF_RANGE),
        ("1" * 50, OUT_OF_RANGE),
        ("9" * 5000, OUT_OF_RANGE),
        ("eleven", OUT_OF_RANGE),
        ("eleven out of ten", OUT_OF_RANGE),
        ("dix-neuf", OUT_OF_RANGE),
        ("mười một", OUT_OF_RANGE),
        ("hai mươi", OUT_OF_RANGE),
        ("十一", OUT_OF_RANGE),
        ("一百分", OUT_OF_RANGE),
        # prose without a score
        ("great service!", NO_NUMBER),
        ("slow support", NO_NUMBER),
        ("One of the best", NO_NUMBER),
        ("two thumbs up", NO_NUMBER),
        ("zero complaints", NO_NUMBER),
        ("nine great", NO_NUMBER),
        ("C'est neuf.", NO_NUMBER),
        ("Cảm ơn bà", NO_NUMBER),
        ("the 2nd time was bad", NO_NUMBER),
        ("一般", NO_NUMBER),
        ("十分满意", NO_NUMBER),
        ("十分感谢", NO_NUMBER),
        ("等了一分钟", NO_NUMBER),
        ("ok", NO_NUMBER),
        ("one and only", NO_NUMBER),
        ("ten minutes late", NO_NUMBER),
        ("no", NO_NUMBER),
        # Arabic
        ("٧ أو ٨", AMBIGUOUS),
        ("٧-٨", AMBIGUOUS),
        ("سبعة أو ثمانية", AMBIGUOUS),
        ("بين ٧ و٨", AMBIGUOUS),
        ("٧٫٥", AMBIGUOUS),
        ("سبعة ونصف", AMBIGUOUS),
        ("١١", OUT_OF_RANGE),
        ("١٠٠", OUT_OF_RANGE),
        ("١٠٫٥", OUT_OF_RANGE),
        ("٤/٥", OUT_OF_RANGE),
        ("أحد عشر", OUT_OF_RANGE),
        ("تسعة عشر", OUT_OF_RANGE),
        ("اثنا عشر", OUT_OF_RANGE),
        ("عشرون", OUT_OF_RANGE),
        ("خدمة ممتازة", NO_NUMBER),
        ("تسعة موظفين ساعدوني", NO_NUMBER),  # a number word inside a sentence, as in every language
        ("واحد من الموظفين كان لطيفاً", NO_NUMBER),
        ("شكراً", NO_NUMBER),
    ],
)
def test_unclear(reply: str, reason: UnclearReason) -> None:
    assert parse_reply(reply) == Unclear(reason)


# --- keywords -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keyword", sorted(OPT_OUT_KEYWORDS))
def test_opt_out_keywords(keyword: str) -> None:
    for variant in (
        keyword,
        keyword.lower(),
        keyword.title(),
        f"  {keyword}  ",
        f"{keyword}.",
        f"{keyword}!!",
        f'"{keyword}"',
    ):
        assert parse_reply(variant) == OptOut(keyword), variant


@pytest.mark.parametrize("keyword", sorted(OPT_IN_KEYWORDS))
def test_opt_in_keywords(keyword: str) -> None:
    for variant in (keyword, keyword.lower(), f" {keyword}! "):
        assert parse_reply(variant) == OptIn(keyword), variant


@pytest.mark.parametrize("keyword", sorted(HELP_KEYWORDS))
def test_help_keywords(keyword: str) -> None:
    for variant in (keyword, keyword.lower(), f"{keyword}?"):
        assert parse_reply(variant) == Help(keyword), variant


def test_twilio_keyword_lists() -> None:
    assert {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"} == OPT_OUT_KEYWORDS
    assert {"START", "YES", "UNSTOP"} == OPT_IN_KEYWORDS
    assert {"HELP", "INFO"} == HELP_KEYWORDS


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("ＳＴＯＰ", OptOut("STOP")),
        ("Stop 🛑", OptOut("STOP")),
        ("opt-out", OptOut("OPTOUT")),
        ("opt out", OptOut("OPTOUT")),
        ("stop all", OptOut("STOPALL")),
        ("Stop please", OptOut("STOP")),
        ("Please stop texting me", OptOut("STOP TEXTING", free_text=True)),
        ("don't stop", Unclear(NO_NUMBER)),
        ("yes 9", Score(9)),
        ("stopp", OptOut("STOPP")),
        ("stop crashing please", Unclear(NO_NUMBER)),
    ],
)
def test_keywords_are_whole_replies_and_phrases_count_anywhere(reply: str, expected: Reply) -> None:
    assert parse_reply(reply) == expected


# --- the replies are values ---------------------------------------------------------------------------------


def test_replies_are_frozen_values() -> None:
    assert Score(9) == Score(9) and hash(Score(9)) == hash(Score(9))
    assert {OptOut("STOP"), OptOut("STOP")} == {OptOut("STOP")}
    with pytest.raises(dataclasses.FrozenInstanceError):
        Score(9).value = 10  # type: ignore[misc]


# --- properties ---------------------------------------------------------------------------------------------


@given(st.text(max_size=2000), st.sampled_from([None, "en", "fr", "zh-TW", "vi", "xx", ""]))
@example("1" * 2000, None)
@example("-" * 2000, None)
@example("9/" * 1000, None)
@example("十分" * 1000, None)
@example("nine-" * 400, None)
@example("½" * 2000, None)
@example("\u200b9\u200b", None)
def test_no_input_makes_it_raise(text: str, locale: str | None) -> None:
    reply = parse_reply(text, locale)
    assert isinstance(reply, Score | OptOut | OptIn | Help | Unclear)
    if isinstance(reply, Score):
        assert 0 <= reply.value <= 10
    if isinstance(reply, Unclear):
        assert reply.reason in UNCLEAR_REASONS


@given(
    st.integers(min_value=0, max_value=10),
    st.sampled_from(["{n}", "{n}/10", "{n} / 10", "I'd say {n}", "{n} out of 10", "{n}!", " {n} "]),
)
def test_every_score_in_every_template(n: int, template: str) -> None:
    assert parse_reply(template.format(n=n)) == Score(n)


@given(st.integers(min_value=0, max_value=10), st.data())
def test_every_score_as_a_word(n: int, data: st.DataObject) -> None:
    word = data.draw(st.sampled_from(sorted(NUMBER_WORDS[n])))
    assert parse_reply(word) == Score(n)


@given(st.integers(min_value=11, max_value=10**30))
def test_numbers_above_ten_are_out_of_range(n: int) -> None:
    assert parse_reply(str(n)) == Unclear(OUT_OF_RANGE)
    assert parse_reply(f"-{n}") == Unclear(OUT_OF_RANGE)


@pytest.mark.parametrize(
    "text",
    [
        "1" * 10_000,
        "1." * 5_000,
        "1-" * 5_000,
        "1/" * 5_000,
        "9 " * 5_000,
        "a" * 10_000,
        "nine-" * 2_000,
        "out of " * 1_400,
        "九" * 10_000,
        "十分" * 5_000,
        "😀" * 10_000,
        "ﷺ" * 10_000,  # expands to 18 characters under NFKC
        " " * 9_999 + "9",
        "stop " * 2_000,
    ],
)
def test_long_adversarial_input_returns(text: str) -> None:
    assert isinstance(parse_reply(text), Score | Unclear)
