"""The words and characters of replies that the parser (:mod:`campaigns.replies.parser`) reads, per language.

A data table: number words 0-10 (and a few beyond, so that "eleven" is out of range) of every shipped locale,
Chinese numerals, and the small words around a score ("out of", "points", "and a half", "or maybe"). Adding
a locale adds its words here (CONTRIBUTING.md); the parser's rules do not change.

Per language: value -> spellings. The first spelling of a value is the canonical one; spellings without
accents (or without the hamza of Arabic "أربعة") are added automatically for replies typed without any. A trailing "~" marks a *weak* spelling, one
that is also a common word (an article, "new", "you are", "year", "not"...): it counts only as the whole
reply or before "out of ten". Values outside 0..10 are there so that "eleven" is out of range, not "no
number"; they are all weak.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final

__all__ = [
    "AR_TEENS",
    "CJK_AFTER",
    "CJK_BEFORE",
    "CJK_BIG",
    "CJK_DIGITS",
    "CJK_FULL_MARKS",
    "CJK_NUMERALS",
    "CONNECTORS",
    "EXACT_WORDS",
    "HALF_FILLERS",
    "HALF_WORDS",
    "LOOSE_WORDS",
    "MINUTE_OR_MONEY",
    "NUMBER_WORDS",
    "NUMBER_WORD_LANGUAGES",
    "OF_WORDS",
    "ORDINAL_ENDINGS",
    "OUT_OF_TEN_WORDS",
    "POINT_WORDS",
    "VI_TEN",
    "VI_TENS",
    "VI_UNITS_AFTER_TEN",
    "WORDS",
    "Word",
]

WORDS: Final[dict[str, dict[int, tuple[str, ...]]]] = {
    "en": {
        0: ("zero", "nought~", "nil~"),
        1: ("one~",),
        2: ("two",),
        3: ("three",),
        4: ("four",),
        5: ("five",),
        6: ("six",),
        7: ("seven",),
        8: ("eight",),
        9: ("nine",),
        10: ("ten",),
        11: ("eleven~",),
        12: ("twelve~",),
        20: ("twenty~",),
        100: ("hundred~",),
    },
    "es": {
        0: ("cero",),
        1: ("uno~", "una~", "un~"),
        2: ("dos",),
        3: ("tres",),
        4: ("cuatro",),
        5: ("cinco",),
        6: ("seis",),
        7: ("siete",),
        8: ("ocho",),
        9: ("nueve",),
        10: ("diez",),
        11: ("once~",),
        12: ("doce~",),
        20: ("veinte~",),
        100: ("cien~",),
    },
    "fr": {
        0: ("zéro",),
        1: ("un~", "une~"),
        2: ("deux",),
        3: ("trois",),
        4: ("quatre",),
        5: ("cinq",),
        6: ("six",),
        7: ("sept",),
        8: ("huit",),
        9: ("neuf~",),
        10: ("dix",),
        11: ("onze~",),
        12: ("douze~",),
        20: ("vingt~",),
        100: ("cent~",),
    },
    "de": {
        0: ("null~",),
        1: ("eins", "ein~", "eine~"),
        2: ("zwei", "zwo"),
        3: ("drei",),
        4: ("vier",),
        5: ("fünf", "fuenf"),
        6: ("sechs",),
        7: ("sieben",),
        8: ("acht",),
        9: ("neun",),
        10: ("zehn",),
        11: ("elf~",),
        12: ("zwölf~", "zwoelf~"),
        20: ("zwanzig~",),
        100: ("hundert~",),
    },
    "pt": {
        0: ("zero",),
        1: ("um~", "uma~"),
        2: ("dois", "duas"),
        3: ("três",),
        4: ("quatro",),
        5: ("cinco",),
        6: ("seis",),
        7: ("sete",),
        8: ("oito",),
        9: ("nove",),
        10: ("dez",),
        11: ("onze~",),
        12: ("doze~",),
        20: ("vinte~",),
        100: ("cem~",),
    },
    "nl": {
        0: ("nul~",),
        1: ("één", "een~"),
        2: ("twee",),
        3: ("drie",),
        4: ("vier",),
        5: ("vijf",),
        6: ("zes",),
        7: ("zeven",),
        8: ("acht",),
        9: ("negen",),
        10: ("tien",),
        11: ("elf~",),
        12: ("twaalf~",),
        20: ("twintig~",),
        100: ("honderd~",),
    },
    "it": {
        0: ("zero",),
        1: ("uno~", "una~", "un~"),
        2: ("due~",),
        3: ("tre",),
        4: ("quattro",),
        5: ("cinque",),
        6: ("sei~",),
        7: ("sette",),
        8: ("otto~",),
        9: ("nove",),
        10: ("dieci",),
        11: ("undici~",),
        12: ("dodici~",),
        20: ("venti~",),
        100: ("cento~",),
    },
    "fi": {
        0: ("nolla",),
        1: ("yksi", "ykkönen"),
        2: ("kaksi", "kakkonen"),
        3: ("kolme", "kolmonen"),
        4: ("neljä", "nelonen"),
        5: ("viisi", "vitonen"),
        6: ("kuusi", "kutonen"),
        7: ("seitsemän", "seiska"),
        8: ("kahdeksan", "kasi~"),
        9: ("yhdeksän", "ysi"),
        10: ("kymmenen", "kymppi"),
        11: ("yksitoista~",),
        12: ("kaksitoista~",),
        20: ("kaksikymmentä~",),
        100: ("sata~",),
    },
    "vi": {
        0: ("không~",),
        1: ("một~",),
        2: ("hai",),
        3: ("ba~",),
        4: ("bốn",),
        5: ("năm~",),
        6: ("sáu",),
        7: ("bảy", "bẩy"),
        8: ("tám",),
        9: ("chín",),
        10: ("mười",),
        100: ("trăm~",),
    },
    # Modern Standard Arabic, both genders ("ثلاثة"/"ثلاث"), with the final teh marbuta typed as heh ("تسعه")
    # and Egyptian spellings ("اتنين", "تلاتة", "تمانية"). Spellings without hamza ("اربعة") are added like
    # spellings without accents. Short forms that are also other words are weak: "خمس"/"عشر" (a fifth, a tenth),
    # "ست" (lady), "سبع" (lion), "تسع" (it holds), "واحد" (someone). 11-19 are two words ("تسعة عشر"), see
    # AR_TEENS; "أحد"/"إحدى" and "اثنا"/"اثني" begin 11 and 12.
    "ar": {
        0: ("صفر",),
        1: ("واحد~", "واحدة~", "واحده~"),
        2: ("اثنان", "اثنين", "إثنان", "إثنين", "اتنين"),
        3: ("ثلاثة", "ثلاثه", "ثلاث", "تلاتة", "تلاته", "تلات"),
        4: ("أربعة", "أربعه", "أربع"),
        5: ("خمسة", "خمسه", "خمس~"),
        6: ("ستة", "سته", "ست~"),
        7: ("سبعة", "سبعه", "سبع~"),
        8: ("ثمانية", "ثمانيه", "ثماني", "ثمان", "تمانية", "تمانيه", "تمنية"),
        9: ("تسعة", "تسعه", "تسع~"),
        10: ("عشرة", "عشره", "عشر~"),
        11: ("أحد~", "إحدى~"),
        12: ("اثنا~", "اثني~"),
        20: ("عشرون~", "عشرين~"),
        100: ("مئة~", "مائة~", "مية~"),
    },
}

# Languages whose number words are recognised: the word lists above, plus Chinese numerals.
NUMBER_WORD_LANGUAGES: Final = frozenset({*WORDS, "zh"})

# Languages whose spellings without accents are too often other words to count outside a whole reply
# (Vietnamese "ba", "bon", "nam", "sau", "bay" typed without tone marks).
_WEAK_WITHOUT_ACCENTS: Final = frozenset({"vi"})

# Chinese numerals: written by character, see _cjk_mentions.
CJK_DIGITS: Final = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "兩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
CJK_BIG: Final = frozenset("百千万萬亿億")
CJK_NUMERALS: Final = frozenset(CJK_DIGITS) | {"十"} | CJK_BIG
CJK_FULL_MARKS: Final = ("满分", "滿分")
# Characters that may stand right before / after a numeral that is a score: "我给九分", "打十分吧", "九到十".
CJK_BEFORE: Final = frozenset("给給打是评評为為选選就到至或和跟与與")
CJK_AFTER: Final = frozenset("分吧啊呀了喔哦啦到至或和跟与與")

# "9 out of 10", "9/10", "8 de 10", "٩ من ١٠", "٨ على ١٠": words between a score and its denominator ten.
OF_WORDS: Final = frozenset(
    {"of", "outta", "sur", "de", "sobre", "von", "van", "op", "uit", "su", "di", "em", "trên", "tren"}
    | {"من", "على", "علي"}
)
# Words after a score that mean "out of ten" on their own (Finnish "yhdeksän kymmenestä").
OUT_OF_TEN_WORDS: Final = frozenset({"kymmenestä", "kymmenesta"})
# "points" in every language: "nine points", "9 điểm".
POINT_WORDS: Final = frozenset(
    {
        "point",
        "points",
        "pt",
        "pts",
        "punkt",
        "punkte",
        "punto",
        "puntos",
        "ponto",
        "pontos",
        "punti",
        "punt",
        "punten",
        "piste",
        "pistettä",
        "pistetta",
        "pisteet",
        "điểm",
        "diem",
        "نقاط",
        "نقطة",
        "نقطه",
        "درجات",
        "درجة",
        "درجه",
    }
)
# "and a half" after a number makes it a fraction: "7 and a half".
HALF_WORDS: Final = frozenset(
    {"half", "demi", "demie", "halb", "halbe", "medio", "media", "meio", "mezzo", "puoli", "rưỡi"}
    | {"ونصف", "نصف", "ونص"}  # Arabic "and a half" is one word: the conjunction "و" is written joined
)
HALF_FILLERS: Final = frozenset({"and", "a", "an", "et", "und", "y", "e", "ja", "en", "een", "و", "-"})
# Words that join two candidate scores: "7 or maybe 8", "between 7 and perhaps 8".
CONNECTORS: Final = frozenset(
    {
        "or",
        "and",
        "to",
        "maybe",
        "perhaps",
        "ou",
        "et",
        "à",
        "peut",
        "o",
        "y",
        "e",
        "oder",
        "und",
        "bis",
        "vielleicht",
        "of",
        "en",
        "tot",
        "misschien",
        "tai",
        "ja",
        "ehkä",
        "hoặc",
        "hay",
        "và",
        "đến",
        "tới",
        "quizás",
        "forse",
        "talvez",
        "أو",
        "او",
        "و",
        "إلى",
        "الى",
        "ربما",
        "يمكن",
    }
)
# Vietnamese tens and compounds: "mười một" is 11, "hai mươi" is 20.
VI_TENS: Final = frozenset({"mươi"})
VI_UNITS_AFTER_TEN: Final = frozenset(
    {"một", "mốt", "hai", "ba", "bốn", "tư", "năm", "lăm", "sáu", "bảy", "bẩy", "tám", "chín"}
    | {"mot", "hai", "ba", "bon", "tu", "nam", "lam", "sau", "bay", "tam", "chin"}
)
VI_TEN: Final = frozenset({"mười", "muoi"})
# Arabic 11-19: a unit followed by "ten" ("تسعة عشر" is 19, "أحد عشر" 11).
AR_TEENS: Final = frozenset({"عشر", "عشرة", "عشره"})

# Ordinal endings right after digits: "the 2nd time", "le 3e appel", "de 2de keer" are no scores.
ORDINAL_ENDINGS: Final = frozenset(
    {"st", "nd", "rd", "th", "e", "er", "re", "ère", "ème", "eme", "de", "ste"}
)
# After 分, these make it no score: 一分钟 (one minute), 一分钱 (one cent), 三分之一 (a third).
MINUTE_OR_MONEY: Final = frozenset("钟鐘钱錢之")


def _strip_accents(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).replace("đ", "d")


@dataclass(frozen=True)
class Word:
    values: dict[str, int]  # language -> value
    weak: bool


def _word_tables() -> tuple[dict[str, Word], dict[str, Word]]:
    """(spellings as written, spellings without accents) -> values per language."""
    exact: dict[str, dict[str, int]] = {}
    loose: dict[str, dict[str, int]] = {}
    weak_exact: set[str] = set()
    weak_loose: set[str] = set()
    for language, numbers in WORDS.items():
        for value, spellings in numbers.items():
            for spelling in spellings:
                word, weak = spelling.removesuffix("~"), spelling.endswith("~")
                weak = weak or value > 10
                exact.setdefault(word, {})[language] = value
                if weak:
                    weak_exact.add(word)
                bare = _strip_accents(word)
                loose.setdefault(bare, {})[language] = value
                if weak or (language in _WEAK_WITHOUT_ACCENTS and bare != word) or bare in weak_exact:
                    weak_loose.add(bare)
    # A spelling that is weak in one language is weak in all ("un" is French "a" whatever the locale).
    return (
        {word: Word(values, word in weak_exact) for word, values in exact.items()},
        {word: Word(values, word in weak_loose or word in weak_exact) for word, values in loose.items()},
    )


EXACT_WORDS, LOOSE_WORDS = _word_tables()

# value -> every spelling of it in every language (for tests and documentation).
NUMBER_WORDS: Final[dict[int, frozenset[str]]] = {
    value: frozenset(
        word
        for table in (EXACT_WORDS, LOOSE_WORDS)
        for word, entry in table.items()
        if value in entry.values.values()
    )
    for value in range(11)
}
