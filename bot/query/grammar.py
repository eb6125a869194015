"""The `/nps` grammar: the text after the slash command becomes one frozen query value, or a GrammarError.

Pure: the caller passes `now` (aware) and the reporting time zone; nothing here reads a clock or a database.
`parse` raises nothing but GrammarError for any text, whose `example` is the closest valid command.
"""

from __future__ import annotations

import calendar
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

from storage.enums import Category, Channel

Granularity = Literal["weekly", "monthly"]
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

HELP_TEXT = """\
*`/nps` answers questions about your Net Promoter Score.*

*Commands*
• `/nps` or `/nps score [period] [filters]` - NPS with its 95% margin of error, counts, response rate and the change against the previous period
• `/nps trend [weekly|monthly] [period] [filters]` - a chart of NPS over time (default: weekly over 12 weeks)
• `/nps compare PROPERTY [period] [filters]` - NPS per value of a contact property, e.g. `plan` or `region` (default: last 90d)
• `/nps comments [detractors|passives|promoters] [keyword] [period] [filters] [page N]` - the latest comments, newest first
• `/nps followups [mine|overdue|open]` - follow-ups (default: open)
• `/nps contact PHONE|EMAIL|ID` - a contact's answers and follow-ups
• `/nps campaigns` - campaigns and their status
• `/nps campaign pause|resume|run NAME` - campaign control (admins only)

*Periods* (default: `last 30d`)
`last 30d`, `last 12w`, `last 6m`, `last 1y` (rolling) • `this week|month|quarter|year` (to date) • \
`last week|month|quarter|year` (the previous full one) • `2026-01-01..2026-03-31` (inclusive dates)

*Filters* (combine with AND)
`campaign:NAME` • `channel:sms` or `channel:email` • `PROPERTY=VALUE`, e.g. `plan=enterprise` or `region="North America"`

*Examples*
`/nps score this quarter plan=enterprise`
`/nps trend monthly this year channel:sms`
`/nps compare region last quarter campaign:quarterly-pulse`
`/nps comments detractors "delivery" last 90d`"""


class GrammarError(ValueError):
    """Input `/nps` does not understand: `message` names the problem, `example` is the closest valid command."""

    def __init__(self, message: str, example: str) -> None:
        super().__init__(message)
        self.message = message
        self.example = example


# --- values ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC.

    previous() steps back by `months` calendar months or `days` calendar days in `tz` when either is set (so a
    quarter is preceded by the whole quarter before, across DST), else by the exact length.
    """

    start: datetime
    end: datetime
    label: str = field(default="", compare=False)
    source: str = field(default="", compare=False)  # grammar text that gives it again ("" = the default)
    months: int = field(default=0, compare=False)
    days: int = field(default=0, compare=False)
    tz: tzinfo = field(default=UTC, compare=False)

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        if self.months:
            start = add_months(self.start, -self.months, self.tz)
        elif self.days:
            start = (self.start.astimezone(self.tz) - timedelta(days=self.days)).astimezone(UTC)
        else:
            start = self.start - (self.end - self.start)
        label = f"the period before {self.label}" if self.label else "the period before"
        return Period(start, self.start, label, "", self.months, self.days, self.tz)

    def local_dates(self) -> tuple[date, date]:
        """First and last local day covered (the end is exclusive, so the last day is the one before it)."""
        last = (self.end - timedelta(microseconds=1)) if self.end > self.start else self.end
        return self.start.astimezone(self.tz).date(), last.astimezone(self.tz).date()


@dataclass(frozen=True)
class Filters:
    campaign: str | None = None
    channel: Channel | None = None
    properties: tuple[tuple[str, str], ...] = ()

    def to_text(self) -> str:
        """Grammar text that gives these filters again, e.g. `campaign:pulse plan=pro`."""
        parts = [f"campaign:{quote(self.campaign)}"] if self.campaign else []
        if self.channel:
            parts.append(f"channel:{self.channel.value}")
        parts += [f"{quote(key)}={quote(value)}" for key, value in self.properties]
        return " ".join(parts)


NO_FILTERS = Filters()


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
        parts += [self.period.source, self.filters.to_text()]
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
    | HelpQuery
)


def quote(text: str, *, always: bool = False) -> str:
    """`text` as one grammar token: double-quoted when it holds spaces or quotes (or `always`)."""
    if always or not text or any(ch.isspace() or ch in _QUOTES or ch in "\\=:" for ch in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


# --- tokens ----------------------------------------------------------------------------------------------

# Opening quote -> the closers it accepts; Slack clients on macOS and iOS send typographic quotes.
_QUOTES = {'"': '"', "'": "'", "“": "”“", "”": "”", "„": "“”", "‘": "’‘", "«": "»"}
# Slack escapes &, < and > and may wrap emails, phones and links as <mailto:a@b.c|a@b.c>.
_SLACK_LINK = re.compile(r"<(?:mailto:|tel:)?([^<>|]*)(?:\|([^<>]*))?>")


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool  # some of it was inside quotes: never a command word, period or filter keyword
    op: int | None  # index in text of the first unquoted "=" or ":" (a filter)

    @property
    def word(self) -> str:
        return "" if self.quoted else self.text.casefold()


def _normalize(text: str) -> str:
    text = _SLACK_LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _tokenize(text: str) -> list[_Token]:
    """Whitespace-separated tokens with shell-like quotes; a quote opens a token or a filter value only,
    so apostrophes inside words ("don't") stay literal."""
    tokens: list[_Token] = []
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
                    raise GrammarError(f"a quote ({ch}) is not closed", EXAMPLES["score"])
                quoted, i = True, i + 1
                continue
            if ch in "=:" and op is None:
                op = len(chars)
            chars.append(ch)
            i += 1
        tokens.append(_Token("".join(chars), quoted, op))
    return tokens


# --- periods ---------------------------------------------------------------------------------------------

_UNITS = {
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "w"),
    **dict.fromkeys(("m", "mo", "mon", "month", "months"), "m"),
    **dict.fromkeys(("q", "quarter", "quarters"), "q"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "y"),
}
_UNIT_NAMES = {"d": "day", "w": "week", "m": "month", "q": "quarter", "y": "year"}
_UNIT_MAX = {"d": 3660, "w": 522, "m": 120, "q": 40, "y": 10}
_CALENDAR = {"week": 0, "month": 1, "quarter": 3, "year": 12}  # months per unit; a week is 7 days
_ROLLING = re.compile(r"(\d{1,6})([a-z]*)")
_DATE = r"\d{4}-\d{2}-\d{2}"
_RANGE = re.compile(rf"({_DATE})(?:\.\.({_DATE}))?")
_MIN_YEAR, _MAX_YEAR = 1970, 2999


def add_months(moment: datetime, months: int, tz: tzinfo) -> datetime:
    """`moment` moved by whole calendar months in `tz` (day clamped to the month's length), in UTC."""
    local = moment.astimezone(tz)
    index = local.year * 12 + local.month - 1 + months
    year, month = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day).astimezone(UTC)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def _unit_start(today: date, unit: str) -> date:
    if unit == "week":
        return today - timedelta(days=today.weekday())
    if unit == "month":
        return today.replace(day=1)
    if unit == "quarter":
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    return today.replace(month=1, day=1)


class _Context:
    def __init__(self, now: datetime, tz: tzinfo, command: str) -> None:
        self.now, self.tz, self.command = now.astimezone(UTC), tz, command

    def fail(self, message: str, example: str | None = None) -> GrammarError:
        return GrammarError(message, example or EXAMPLES[self.command])

    def calendar(self, which: str, unit: str) -> Period:
        start_day = _unit_start(self.now.astimezone(self.tz).date(), unit)
        months, days = _CALENDAR[unit], 0 if _CALENDAR[unit] else 7
        start = local_midnight(start_day, self.tz)
        this = Period(start, start, f"this {unit}", f"this {unit}", months, days, self.tz)
        if which == "last":
            return replace(this.previous(), label=f"last {unit}", source=f"last {unit}")
        unit_end = (
            add_months(start, months, self.tz)
            if months
            else local_midnight(start_day + timedelta(7), self.tz)
        )
        # To date: the current unit ends now, and previous() is the whole unit before it.
        return replace(this, end=min(unit_end, self.now))

    def rolling(self, count: int, unit: str, spelled: str) -> Period:
        if not 1 <= count <= _UNIT_MAX[unit]:
            raise self.fail(f"`last {spelled}`: use 1 to {_UNIT_MAX[unit]} {_UNIT_NAMES[unit]}s")
        label = f"last {count} {_UNIT_NAMES[unit]}{'s' if count > 1 else ''}"
        source = f"last {count}{unit}"
        if unit in ("d", "w"):
            length = timedelta(days=count * (7 if unit == "w" else 1))
            return Period(self.now - length, self.now, label, source, 0, 0, self.tz)
        months = count * {"m": 1, "q": 3, "y": 12}[unit]
        return Period(add_months(self.now, -months, self.tz), self.now, label, source, months, 0, self.tz)

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
        start, end = local_midnight(first, self.tz), local_midnight(last + timedelta(days=1), self.tz)
        days = (last - first).days + 1
        return Period(start, end, spelled.replace("..", " to "), spelled, 0, days, self.tz)

    def period_at(self, tokens: list[_Token], i: int) -> tuple[Period, int] | None:
        """The period starting at tokens[i] and how many tokens it takes, or None when none starts there."""
        word = tokens[i].word
        nxt = tokens[i + 1].word if i + 1 < len(tokens) else ""
        if word in ("last", "past", "this", "current"):
            which = "this" if word in ("this", "current") else "last"
            if nxt in _CALENDAR:
                return self.calendar(which, nxt), 2
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


def _plain(text: str) -> _Token:
    return _Token(text, False, None)


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
    words: list[_Token] = field(default_factory=list)

    def filters(self) -> Filters:
        return Filters(self.campaign, self.channel, tuple(self.properties.items()))


def _read_args(tokens: list[_Token], ctx: _Context, *, paged: bool = False) -> _Args:
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


def _read_filter(token: _Token, args: _Args, ctx: _Context, *, paged: bool) -> None:
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


def _score(tokens: list[_Token], ctx: _Context) -> Query:
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


def _trend(tokens: list[_Token], ctx: _Context) -> Query:
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
    today = ctx.now.astimezone(ctx.tz).date()
    if granularity == "weekly":
        start = local_midnight(_unit_start(today, "week") - timedelta(weeks=11), ctx.tz)
        return Period(start, ctx.now, "last 12 weeks", "", 0, 84, ctx.tz)
    start = add_months(local_midnight(_unit_start(today, "month"), ctx.tz), -11, ctx.tz)
    return Period(start, ctx.now, "last 12 months", "", 12, 0, ctx.tz)


def _compare(tokens: list[_Token], ctx: _Context) -> Query:
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


def _comments(tokens: list[_Token], ctx: _Context) -> Query:
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


def _followups(tokens: list[_Token], ctx: _Context) -> Query:
    if not tokens:
        return FollowupsQuery()
    scope = _SCOPES.get(tokens[0].word)
    if len(tokens) > 1 or scope is None:
        raise ctx.fail(
            f"I don't understand `{' '.join(t.text for t in tokens)}`; use `mine`, `overdue` or `open`"
        )
    return FollowupsQuery(scope)


def _contact(tokens: list[_Token], ctx: _Context) -> Query:
    key = " ".join(token.text for token in tokens).strip()
    if not key:
        raise ctx.fail("`/nps contact` needs a phone number, an email address or a contact id")
    return ContactQuery(key)


_ACTIONS: dict[str, CampaignAction] = {"pause": "pause", "resume": "resume", "run": "run"}


def _campaigns(tokens: list[_Token], ctx: _Context) -> Query:
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


def _help(tokens: list[_Token], ctx: _Context) -> Query:
    return HelpQuery()


_COMMANDS: dict[str, Callable[[list[_Token], _Context], Query]] = {
    "score": _score,
    "trend": _trend,
    "compare": _compare,
    "comments": _comments,
    "followups": _followups,
    "contact": _contact,
    "campaigns": _campaigns,
    "campaign": _campaigns,
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
    text = _normalize(text)
    try:
        tokens = _tokenize(text)
    except GrammarError as error:  # point at the command the user was typing
        first = text.split()[0].casefold() if text.split() else ""
        raise GrammarError(error.message, EXAMPLES[ALIASES.get(first, "score")]) from None
    if not tokens:
        return ScoreQuery(_Context(now, tz, "score").default())
    name = ALIASES.get(tokens[0].word)
    if name is None:
        score = _Context(now, tz, "score")
        if tokens[0].op is not None or score.period_at(tokens, 0):
            return _score(tokens, score)  # `/nps last 90d plan=pro` reads as a score query
        raise _unknown_command(tokens, text, now, tz)
    return _COMMANDS[name](tokens[1:], _Context(now, tz, name))


def _unknown_command(tokens: list[_Token], text: str, now: datetime, tz: tzinfo) -> GrammarError:
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
