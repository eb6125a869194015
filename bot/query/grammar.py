"""The `/nps` grammar: the text after the slash command becomes one frozen query value, or a GrammarError.

Pure: the caller passes `now` (aware) and the reporting time zone; nothing here reads a clock or a database.
`parse` raises nothing but GrammarError for any text, whose `example` is the closest valid command.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, tzinfo
from typing import Literal

from bot.query.tokens import Token, UnclosedQuote, normalize, quote, tokenize
from campaigns.scores.filters import NO_FILTERS, Filters
from campaigns.scores.periods import (
    UNIT_NAMES,
    CalendarUnit,
    Granularity,
    Period,
    RollingUnit,
    calendar_period,
    date_range,
    rolling_period,
    whole_buckets,
)
from storage.enums import Category, Channel

FollowupScope = Literal["mine", "overdue", "open"]
CampaignAction = Literal["pause", "resume", "run"]

DEFAULT_PERIOD = "last 30d"
MAX_TEXT = 1000  # Slack caps slash command text well below this; longer input is refused, not scanned
EXAMPLES = {
    "score": "/nps score last 30d",
    "trend": "/nps trend weekly last 12w",
    "compare": "/nps compare plan last 90d",
    "comments": "/nps comments detractors last 30d",
    "followups": "/nps followups mine",
    "contact": "/nps contact +14155550123",
    "campaigns": "/nps campaigns",
    "campaign": "/nps campaign pause quarterly-pulse",
    "themes": "/nps themes last 30d",
    "theme": "/nps theme delivery last 12w",
    "help": "/nps help",
}
ALIASES = {
    **{name: name for name in EXAMPLES},
    "nps": "score",
    "trends": "trend",
    "comment": "comments",
    "followup": "followups",
    "follow-up": "followups",
    "follow-ups": "followups",
    "?": "help",
    "-h": "help",
    "--help": "help",
}


class GrammarError(ValueError):
    """Input `/nps` does not understand: `message` names the problem, `example` is the closest valid command."""

    def __init__(self, message: str, example: str) -> None:
        super().__init__(message)
        self.message = message
        self.example = example


# --- queries ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreQuery:
    period: Period
    filters: Filters = NO_FILTERS


@dataclass(frozen=True)
class TrendQuery:
    granularity: Granularity
    period: Period
    filters: Filters = NO_FILTERS


@dataclass(frozen=True)
class CompareQuery:
    property: str
    period: Period
    filters: Filters = NO_FILTERS


@dataclass(frozen=True)
class CommentsQuery:
    category: Category | None
    keyword: str | None
    period: Period
    filters: Filters = NO_FILTERS
    page: int = 1

    def command(self, page: int | None = None) -> str:
        """The `/nps comments ...` text for this query, at another page when given (the "more" hint)."""
        parts = ["/nps comments"]
        if self.category:
            parts.append(f"{self.category.value}s")
        if self.keyword:
            parts.append(quote(self.keyword, always=True))
        parts += [self.period.source, filters_text(self.filters)]
        page = self.page if page is None else page
        if page > 1:
            parts.append(f"page {page}")
        return " ".join(part for part in parts if part)


@dataclass(frozen=True)
class FollowupsQuery:
    scope: FollowupScope = "open"


@dataclass(frozen=True)
class ContactQuery:
    key: str


@dataclass(frozen=True)
class CampaignsQuery:
    pass


@dataclass(frozen=True)
class CampaignControl:
    action: CampaignAction
    name: str


@dataclass(frozen=True)
class ThemesQuery:
    """The saved themes, each with its mention rate and NPS in the period and the one before."""

    period: Period


@dataclass(frozen=True)
class ThemeQuery:
    """One saved theme per week or month."""

    name: str
    granularity: Granularity
    period: Period


@dataclass(frozen=True)
class ThemeChange:
    """Save a theme (a phrase within the responses `filters` select) or stop tracking one: admins only."""

    change: Literal["add", "remove"]
    name: str
    phrase: str = ""
    filters: Filters = NO_FILTERS


@dataclass(frozen=True)
class HelpQuery:
    pass


Query = (
    ScoreQuery
    | TrendQuery
    | CompareQuery
    | CommentsQuery
    | FollowupsQuery
    | ContactQuery
    | CampaignsQuery
    | CampaignControl
    | ThemesQuery
    | ThemeQuery
    | ThemeChange
    | HelpQuery
)


def filters_text(filters: Filters) -> str:
    """Grammar text that gives these filters again, e.g. `campaign:pulse plan=pro`."""
    parts = [f"campaign:{quote(filters.campaign)}"] if filters.campaign else []
    if filters.channel:
        parts.append(f"channel:{filters.channel.value}")
    parts += [f"{quote(key)}={quote(value)}" for key, value in filters.properties]
    return " ".join(parts)


# --- periods ---------------------------------------------------------------------------------------------

_UNITS: dict[str, RollingUnit] = {
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "w"),
    **dict.fromkeys(("m", "mo", "mon", "month", "months"), "m"),
    **dict.fromkeys(("q", "quarter", "quarters"), "q"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "y"),
}
_UNIT_MAX: dict[RollingUnit, int] = {"d": 3660, "w": 522, "m": 120, "q": 40, "y": 10}
_CALENDAR: dict[str, CalendarUnit] = {"week": "week", "month": "month", "quarter": "quarter", "year": "year"}
_ROLLING = re.compile(r"(\d{1,6})([a-z]*)")
_DATE = r"\d{4}-\d{2}-\d{2}"
_RANGE = re.compile(rf"({_DATE})(?:\.\.({_DATE}))?")
_MIN_YEAR, _MAX_YEAR = 1970, 2999


class _Context:
    def __init__(self, now: datetime, tz: tzinfo, command: str) -> None:
        self.now, self.tz, self.command = now.astimezone(UTC), tz, command

    def fail(self, message: str, example: str | None = None) -> GrammarError:
        return GrammarError(message, example or EXAMPLES[self.command])

    def rolling(self, count: int, unit: RollingUnit, spelled: str) -> Period:
        if not 1 <= count <= _UNIT_MAX[unit]:
            raise self.fail(f"`last {spelled}`: use 1 to {_UNIT_MAX[unit]} {UNIT_NAMES[unit]}s")
        return rolling_period(count, unit, now=self.now, tz=self.tz)

    def dates(self, first_text: str, last_text: str | None) -> Period:
        spelled = first_text + (f"..{last_text}" if last_text else "")
        try:
            first = date.fromisoformat(first_text)
            last = date.fromisoformat(last_text) if last_text else first
        except ValueError:
            raise self.fail(f"`{spelled}` holds a date that does not exist; dates are YYYY-MM-DD") from None
        if last < first:
            raise self.fail(f"`{spelled}` ends before it starts; write the earlier date first")
        if first.year < _MIN_YEAR or last.year > _MAX_YEAR:
            raise self.fail(f"`{spelled}`: dates must be between {_MIN_YEAR} and {_MAX_YEAR}")
        return replace(date_range(first, last, self.tz), label=spelled.replace("..", " to "), source=spelled)

    def period_at(self, tokens: list[Token], i: int) -> tuple[Period, int] | None:
        """The period starting at tokens[i] and how many tokens it takes, or None when none starts there."""
        word = tokens[i].word
        nxt = tokens[i + 1].word if i + 1 < len(tokens) else ""
        if word in ("last", "past", "this", "current"):
            which: Literal["this", "last"] = "this" if word in ("this", "current") else "last"
            if nxt in _CALENDAR:
                return calendar_period(which, _CALENDAR[nxt], now=self.now, tz=self.tz), 2
            if nxt.endswith("s") and nxt[:-1] in _CALENDAR:
                raise self.fail(f"`{word} {nxt}` needs a number, e.g. `last 3{nxt[0]}`")
            match = _ROLLING.fullmatch(nxt)
            if which == "last" and match:
                unit_text, taken = match.group(2), 2
                if not unit_text and i + 2 < len(tokens) and tokens[i + 2].word in _UNITS:
                    unit_text, taken = tokens[i + 2].word, 3
                if unit_text in _UNITS:
                    return self.rolling(int(match.group(1)), _UNITS[unit_text], nxt), taken
            shown = f"{word} {tokens[i + 1].text}".strip() if nxt else word
            hint = (
                ' (to search comments for the word, quote it: `"last"`)' if self.command == "comments" else ""
            )
            raise self.fail(
                f"`{shown}` is not a period; try `last 30d`, `last 12w`, `last 6m`, `this quarter` or `last month`{hint}"
            )
        match = _ROLLING.fullmatch(word)
        if match and match.group(2) in _UNITS and match.group(2):
            return self.rolling(int(match.group(1)), _UNITS[match.group(2)], word), 1
        if re.fullmatch(_DATE, word) and nxt in ("..", "to", "-") and i + 2 < len(tokens):
            last = tokens[i + 2].word
            if re.fullmatch(_DATE, last):
                return self.dates(word, last), 3
        match = _RANGE.fullmatch(word)
        if match:
            return self.dates(match.group(1), match.group(2)), 1
        if re.fullmatch(rf"{_DATE}\.\..*|.*\.\.{_DATE}", word):
            raise self.fail(f"`{tokens[i].text}` is not a date range; write `2026-01-01..2026-03-31`")
        return None

    def default(self, source: str = DEFAULT_PERIOD) -> Period:
        period, _ = self.period_at(list(map(_plain, source.split())), 0) or (None, 0)
        assert period is not None
        return replace(period, source="")


def _plain(text: str) -> Token:
    return Token(text, False, None)


# --- arguments shared by the query commands ---------------------------------------------------------------

_CHANNELS = {
    "sms": Channel.SMS,
    "text": Channel.SMS,
    "email": Channel.EMAIL,
    "e-mail": Channel.EMAIL,
    "mail": Channel.EMAIL,
}


@dataclass
class _Args:
    period: Period | None = None
    campaign: str | None = None
    channel: Channel | None = None
    properties: dict[str, str] = field(default_factory=dict)
    page: int | None = None
    words: list[Token] = field(default_factory=list)

    def filters(self) -> Filters:
        return Filters(self.campaign, self.channel, tuple(self.properties.items()))


def _read_args(tokens: list[Token], ctx: _Context, *, paged: bool = False) -> _Args:
    """Periods, filters (and `page N`) anywhere among the arguments; other tokens are left in `words`."""
    args, i = _Args(), 0
    while i < len(tokens):
        token = tokens[i]
        found = ctx.period_at(tokens, i)
        if found:
            if args.period is not None:
                raise ctx.fail("give one period only")
            args.period, taken = found
            i += taken
            continue
        if paged and token.word == "page" and i + 1 < len(tokens):
            args.page = _page_number(tokens[i + 1].text, ctx)
            i += 2
            continue
        if token.op is not None:
            _read_filter(token, args, ctx, paged=paged)
        else:
            args.words.append(token)
        i += 1
    return args


def _page_number(text: str, ctx: _Context) -> int:
    if not text.isdecimal() or not 1 <= int(text) <= 10_000:
        raise ctx.fail(f"`page {text}`: the page is a number from 1", "/nps comments detractors page 2")
    return int(text)


def _read_filter(token: Token, args: _Args, ctx: _Context, *, paged: bool) -> None:
    assert token.op is not None
    key, sign, value = (
        token.text[: token.op].strip(),
        token.text[token.op],
        token.text[token.op + 1 :].strip(),
    )
    folded = key.casefold()
    if not key:
        raise ctx.fail(f"`{token.text}` has no name before `{sign}`; filters look like `plan=enterprise`")
    if not value:
        raise ctx.fail(f"`{token.text}` has no value; filters look like `plan=enterprise`")
    if '"' in key:
        raise ctx.fail(f"`{key}`: a property name cannot contain a double quote")
    if folded == "campaign":
        if args.campaign not in (None, value):
            raise ctx.fail("give one `campaign:` filter only (filters combine with AND)")
        args.campaign = value
    elif folded == "channel":
        channel = _CHANNELS.get(value.casefold())
        if channel is None:
            raise ctx.fail(f"`{token.text}`: the channel is `sms` or `email`", "/nps score channel:sms")
        args.channel = channel
    elif folded == "page" and paged and sign == ":":
        args.page = _page_number(value, ctx)
    elif sign == ":":
        raise ctx.fail(
            f"`{key}:` is not a filter; use `campaign:NAME`, `channel:sms|email` or `PROPERTY=VALUE`",
            f"/nps {ctx.command} {quote(key)}={quote(value)}",
        )
    elif args.properties.get(key, value) != value:
        raise ctx.fail(f"`{key}` is given twice; filters combine with AND, so give each property once")
    else:
        args.properties[key] = value


def _no_words(args: _Args, ctx: _Context) -> None:
    if args.words:
        raise ctx.fail(f"I don't understand `{args.words[0].text}` in `/nps {ctx.command}`")


# --- commands --------------------------------------------------------------------------------------------


def _score(tokens: list[Token], ctx: _Context) -> Query:
    args = _read_args(tokens, ctx)
    _no_words(args, ctx)
    return ScoreQuery(args.period or ctx.default(), args.filters())


_GRANULARITIES: dict[str, Granularity] = {
    "weekly": "weekly",
    "week": "weekly",
    "weeks": "weekly",
    "monthly": "monthly",
    "month": "monthly",
    "months": "monthly",
}


def _trend(tokens: list[Token], ctx: _Context) -> Query:
    args = _read_args(tokens, ctx)
    granularity: Granularity | None = None
    for word in args.words:
        wanted = _GRANULARITIES.get(word.word)
        if wanted is None:
            raise ctx.fail(
                f"I don't understand `{word.text}` in `/nps trend`; the buckets are `weekly` or `monthly`"
            )
        if granularity not in (None, wanted):
            raise ctx.fail("choose `weekly` or `monthly`, not both")
        granularity = wanted
    granularity = granularity or "weekly"
    return TrendQuery(granularity, args.period or _trend_default(ctx, granularity), args.filters())


def _trend_default(ctx: _Context, granularity: Granularity) -> Period:
    """Twelve whole buckets ending with the current one, so that the first point is not a partial week."""
    return whole_buckets(granularity, 12, now=ctx.now, tz=ctx.tz)


def _compare(tokens: list[Token], ctx: _Context) -> Query:
    args = _read_args(tokens, ctx)
    words = args.words[1:] if args.words and args.words[0].word == "by" else args.words
    if not words:
        raise ctx.fail("`/nps compare` needs a contact property to compare by, e.g. `plan` or `region`")
    if len(words) > 1:
        raise ctx.fail(f"compare by one property only; I don't understand `{words[1].text}`")
    if '"' in words[0].text:
        raise ctx.fail(f"`{words[0].text}`: a property name cannot contain a double quote")
    return CompareQuery(words[0].text, args.period or ctx.default("last 90d"), args.filters())


_CATEGORY_WORDS = {f"{c.value}{s}": c for c in Category for s in ("", "s")}


def _comments(tokens: list[Token], ctx: _Context) -> Query:
    args = _read_args(tokens, ctx, paged=True)
    category: Category | None = None
    keywords: list[str] = []
    for word in args.words:
        if word.word in _CATEGORY_WORDS and category is None and not keywords:
            category = _CATEGORY_WORDS[word.word]
        else:
            keywords.append(word.text)
    keyword = " ".join(keywords).strip() or None
    return CommentsQuery(category, keyword, args.period or ctx.default(), args.filters(), args.page or 1)


_SCOPES: dict[str, FollowupScope] = {
    "mine": "mine",
    "my": "mine",
    "me": "mine",
    "overdue": "overdue",
    "late": "overdue",
    "open": "open",
    "all": "open",
}


def _followups(tokens: list[Token], ctx: _Context) -> Query:
    if not tokens:
        return FollowupsQuery()
    scope = _SCOPES.get(tokens[0].word)
    if len(tokens) > 1 or scope is None:
        raise ctx.fail(
            f"I don't understand `{' '.join(t.text for t in tokens)}`; use `mine`, `overdue` or `open`"
        )
    return FollowupsQuery(scope)


def _contact(tokens: list[Token], ctx: _Context) -> Query:
    key = " ".join(token.text for token in tokens).strip()
    if not key:
        raise ctx.fail("`/nps contact` needs a phone number, an email address or a contact id")
    return ContactQuery(key)


_ACTIONS: dict[str, CampaignAction] = {"pause": "pause", "resume": "resume", "run": "run"}


def _campaigns(tokens: list[Token], ctx: _Context) -> Query:
    if not tokens:
        return CampaignsQuery()
    action = _ACTIONS.get(tokens[0].word)
    if action is None:
        close = difflib.get_close_matches(tokens[0].word, list(_ACTIONS), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else "; use `pause`, `resume` or `run`"
        raise ctx.fail(f"`{tokens[0].text}` is not a campaign action{hint}", EXAMPLES["campaign"])
    name = " ".join(token.text for token in tokens[1:]).strip()
    if not name:
        raise ctx.fail(
            f"`/nps campaign {action}` needs the campaign's name", f"/nps campaign {action} quarterly-pulse"
        )
    return CampaignControl(action, name)


def _themes(tokens: list[Token], ctx: _Context) -> Query:
    """`themes [list] [period]`, `themes show NAME ...`, `themes add NAME PHRASE [filters]`, `themes remove NAME`."""
    head = tokens[0].word if tokens else ""
    if head in ("show", "trend"):
        return _theme(tokens[1:], ctx)
    if head in ("add", "save", "remove", "delete"):
        return _theme_change("add" if head in ("add", "save") else "remove", tokens[1:], ctx)
    args = _read_args(tokens[1:] if head == "list" else tokens, ctx)
    _no_words(args, ctx)
    if args.filters() != NO_FILTERS:
        raise ctx.fail("each theme keeps its own filters; `/nps themes` takes a period only")
    return ThemesQuery(args.period or ctx.default())


def _theme(tokens: list[Token], ctx: _Context) -> Query:
    if not tokens or tokens[0].op is not None:
        raise ctx.fail("`/nps theme` needs the theme's name; `/nps themes` lists them", EXAMPLES["theme"])
    trend = _trend(tokens[1:], ctx)
    assert isinstance(trend, TrendQuery)
    if trend.filters != NO_FILTERS:
        raise ctx.fail("a theme keeps its own filters; give a period and `weekly` or `monthly` only")
    return ThemeQuery(tokens[0].text.strip(), trend.granularity, trend.period)


def _theme_change(change: Literal["add", "remove"], tokens: list[Token], ctx: _Context) -> Query:
    example = (
        '/nps themes add delivery "late delivery" plan=pro'
        if change == "add"
        else "/nps themes remove delivery"
    )
    needed = 2 if change == "add" else 1
    if len(tokens) < needed or any(token.op is not None for token in tokens[:needed]):
        what = "a name and a phrase (quoted if it has spaces)" if change == "add" else "the theme's name"
        raise ctx.fail(f"`/nps themes {change}` needs {what}", example)
    args = _read_args(tokens[needed:], ctx)
    if args.period is not None:
        raise ctx.fail("a theme keeps filters, not a period: give the period to `/nps theme NAME`", example)
    _no_words(args, ctx)
    phrase = tokens[1].text.strip() if change == "add" else ""
    return ThemeChange(change, tokens[0].text.strip(), phrase, args.filters())


def _help(tokens: list[Token], ctx: _Context) -> Query:
    return HelpQuery()


_COMMANDS: dict[str, Callable[[list[Token], _Context], Query]] = {
    "score": _score,
    "trend": _trend,
    "compare": _compare,
    "comments": _comments,
    "followups": _followups,
    "contact": _contact,
    "campaigns": _campaigns,
    "campaign": _campaigns,
    "themes": _themes,
    "theme": _theme,
    "help": _help,
}


def parse(text: str, now: datetime, tz: tzinfo = UTC) -> Query:
    """The query `text` (what follows `/nps`) asks for; GrammarError for anything else.

    `now` must be aware; rolling periods end at it and calendar periods are taken in `tz`.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise TypeError("parse() needs an aware `now`")
    if len(text) > MAX_TEXT:
        raise GrammarError(f"that is {len(text)} characters; `/nps` commands are short", EXAMPLES["help"])
    text = normalize(text)
    try:
        tokens = tokenize(text)
    except UnclosedQuote as error:  # point at the command the user was typing
        first = text.split()[0].casefold() if text.split() else ""
        raise GrammarError(str(error), EXAMPLES[ALIASES.get(first, "score")]) from None
    if not tokens:
        return ScoreQuery(_Context(now, tz, "score").default())
    name = ALIASES.get(tokens[0].word)
    if name is None:
        score = _Context(now, tz, "score")
        if tokens[0].op is not None or score.period_at(tokens, 0):
            return _score(tokens, score)  # `/nps last 90d plan=pro` reads as a score query
        raise _unknown_command(tokens, text, now, tz)
    return _COMMANDS[name](tokens[1:], _Context(now, tz, name))


def _unknown_command(tokens: list[Token], text: str, now: datetime, tz: tzinfo) -> GrammarError:
    typed = tokens[0].text
    close = difflib.get_close_matches(typed.casefold(), list(ALIASES), n=1, cutoff=0.6)
    if not close:
        return GrammarError(f"`{typed}` is not a command I know; `/nps help` lists them", EXAMPLES["help"])
    name = ALIASES[close[0]]
    example = EXAMPLES[name]
    rest = text.strip()[len(typed) :].strip() if text.strip().startswith(typed) else ""
    if rest:
        try:  # keep the user's own arguments when they are valid for the command they meant
            parse(f"{name} {rest}", now, tz)
            example = f"/nps {name} {rest}"
        except GrammarError:
            pass
    return GrammarError(f"`{typed}` is not a command I know; did you mean `{name}`?", example)
