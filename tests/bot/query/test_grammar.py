from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.mrkdwn import escape
from bot.query.grammar import (
    EXAMPLES,
    CampaignControl,
    CampaignsQuery,
    CommentsQuery,
    CompareQuery,
    ContactQuery,
    FollowupsQuery,
    GrammarError,
    HelpQuery,
    Query,
    ScoreQuery,
    ThemeChange,
    ThemeQuery,
    ThemesQuery,
    TrendQuery,
    filters_text,
    parse,
)
from bot.query.help import HELP_TEXT
from campaigns.scores.filters import Filters
from campaigns.scores.periods import Period, whole_buckets
from storage.enums import Category, Channel
from tests.fixtures.seeding import BERLIN, NOW

UTC_ZONE = ZoneInfo("UTC")


def p(text: str, tz: ZoneInfo = BERLIN) -> Query:
    return parse(text, NOW, tz)


def berlin(year: int, month: int, day: int) -> datetime:
    """Local midnight in Berlin, in UTC."""
    return datetime(year, month, day, tzinfo=BERLIN).astimezone(UTC)


def error(text: str) -> GrammarError:
    with pytest.raises(GrammarError) as info:
        p(text)
    return info.value


# --- commands --------------------------------------------------------------------------------------------


def test_empty_text_is_the_score_for_the_last_30_days() -> None:
    query = p("")
    assert query == ScoreQuery(Period(NOW - timedelta(days=30), NOW), Filters())
    assert p("   ") == query == p("score")


def test_score_with_period_and_filters() -> None:
    query = p('score last 12w campaign:quarterly-pulse channel:email plan=enterprise region="North America"')
    assert query == ScoreQuery(
        Period(NOW - timedelta(weeks=12), NOW),
        Filters("quarterly-pulse", Channel.EMAIL, (("plan", "enterprise"), ("region", "North America"))),
    )


def test_filters_and_periods_without_a_command_read_as_a_score_query() -> None:
    assert p("last 90d plan=pro") == ScoreQuery(
        Period(NOW - timedelta(days=90), NOW), Filters(properties=(("plan", "pro"),))
    )
    assert isinstance(p("this quarter"), ScoreQuery)


def test_commands_and_keywords_ignore_case() -> None:
    assert p("SCORE Last 30D Channel:SMS") == ScoreQuery(
        Period(NOW - timedelta(days=30), NOW), Filters(channel=Channel.SMS)
    )


def test_trend_defaults_to_twelve_whole_weeks() -> None:
    query = p("trend")
    assert isinstance(query, TrendQuery) and query.granularity == "weekly"
    assert query.period.start == berlin(2026, 2, 23)  # the Monday eleven weeks before this week's Monday
    assert query.period.end == NOW


def test_trend_monthly_with_period_and_filter() -> None:
    query = p("trend monthly this year channel:sms")
    assert query == TrendQuery("monthly", Period(berlin(2026, 1, 1), NOW), Filters(channel=Channel.SMS))
    default = p("trend monthly")
    assert isinstance(default, TrendQuery) and default.period.start == berlin(2025, 6, 1)


def test_compare_takes_a_property() -> None:
    query = p("compare region last quarter campaign:pulse")
    assert query == CompareQuery("region", Period(berlin(2026, 1, 1), berlin(2026, 4, 1)), Filters("pulse"))
    assert p("compare by plan") == CompareQuery("plan", Period(NOW - timedelta(days=90), NOW))
    assert p('compare "account manager"') == CompareQuery(
        "account manager", Period(NOW - timedelta(days=90), NOW)
    )


def test_comments_with_category_keyword_period_filters_and_page() -> None:
    query = p('comments detractors "slow delivery" last 90d plan=pro page 3')
    assert query == CommentsQuery(
        Category.DETRACTOR,
        "slow delivery",
        Period(NOW - timedelta(days=90), NOW),
        Filters(properties=(("plan", "pro"),)),
        3,
    )


@pytest.mark.parametrize(
    ("text", "category", "keyword"),
    [
        ("comments", None, None),
        ("comments promoters", Category.PROMOTER, None),
        ("comments passive", Category.PASSIVE, None),
        ("comments price", None, "price"),
        ("comments detractors price support", Category.DETRACTOR, "price support"),
        ('comments "last"', None, "last"),  # quoted: a keyword, not a period
        ('comments "promoters"', None, "promoters"),
        ("comments don't", None, "don't"),  # an apostrophe inside a word is not a quote
        ("comments “smart quotes” page:2", None, "smart quotes"),
    ],
)
def test_comments_forms(text: str, category: Category | None, keyword: str | None) -> None:
    query = p(text)
    assert isinstance(query, CommentsQuery)
    assert (query.category, query.keyword) == (category, keyword)


def test_comments_command_rebuilds_the_query_for_another_page() -> None:
    query = p('comments detractors "slow delivery" last 90d region="North America" campaign:pulse')
    assert isinstance(query, CommentsQuery)
    text = query.command(page=2)
    assert (
        text
        == '/nps comments detractors "slow delivery" last 90d campaign:pulse region="North America" page 2'
    )
    again = p(text.removeprefix("/nps "))
    assert again == CommentsQuery(query.category, query.keyword, query.period, query.filters, 2)


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("followups", "open"),
        ("followups mine", "mine"),
        ("followups overdue", "overdue"),
        ("follow-ups open", "open"),
    ],
)
def test_followups(text: str, scope: str) -> None:
    assert p(text) == FollowupsQuery(scope)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("contact +14155550123", "+14155550123"),
        ("contact ada@example.com", "ada@example.com"),
        ("contact <mailto:ada@example.com|ada@example.com>", "ada@example.com"),  # Slack's auto-link
        ("contact C-1042", "C-1042"),
    ],
)
def test_contact(text: str, key: str) -> None:
    assert p(text) == ContactQuery(key)


def test_campaigns_and_campaign_control() -> None:
    assert p("campaigns") == CampaignsQuery()
    assert p("campaign pause quarterly-pulse") == CampaignControl("pause", "quarterly-pulse")
    assert p("campaign RESUME post-delivery") == CampaignControl("resume", "post-delivery")
    assert p('campaigns run "spring pulse"') == CampaignControl("run", "spring pulse")


def test_saved_themes() -> None:
    week = whole_buckets("weekly", 12, now=NOW, tz=BERLIN)
    assert p("themes") == ThemesQuery(p("score").period)  # type: ignore[union-attr]
    assert p("themes list last 90d").period.source == "last 90d"  # type: ignore[union-attr]
    assert p("theme delivery") == ThemeQuery("delivery", "weekly", week)
    assert p('themes show "late delivery" monthly this year') == ThemeQuery(
        "late delivery",
        "monthly",
        p("score this year").period,  # type: ignore[union-attr]
    )
    assert p('themes add late "late delivery" plan=pro campaign:pulse') == ThemeChange(
        "add", "late", "late delivery", Filters("pulse", None, (("plan", "pro"),))
    )
    assert p("themes remove late") == ThemeChange("remove", "late")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("themes add late", "needs a name and a phrase"),
        ("themes add late delivery last 30d", "not a period"),
        ("themes remove", "needs the theme's name"),
        ("theme", "needs the theme's name"),
        ("themes plan=pro", "takes a period only"),
        ("theme late plan=pro", "keeps its own filters"),
    ],
)
def test_saved_theme_mistakes(text: str, says: str) -> None:
    assert says in error(text).message


@pytest.mark.parametrize("text", ["help", "HELP", "?", "--help"])
def test_help(text: str) -> None:
    assert p(text) == HelpQuery()


def test_help_text_documents_every_command_and_form() -> None:
    for needle in [
        "score", "trend", "compare", "comments", "followups", "contact", "campaigns", "campaign pause|resume|run",
        "last 30d", "last 12w", "last 6m", "this quarter", "2026-01-01..2026-03-31", "campaign:NAME",
        "channel:sms", "PROPERTY=VALUE", 'region="North America"', "themes [period]", "theme NAME",
        "themes add NAME", "themes remove NAME",
    ]:  # fmt: skip
        assert needle in HELP_TEXT


# --- periods ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("last 30d", NOW - timedelta(days=30), NOW),
        ("last 30 days", NOW - timedelta(days=30), NOW),
        ("last 12w", NOW - timedelta(weeks=12), NOW),
        ("90d", NOW - timedelta(days=90), NOW),
        # Six calendar months back in Berlin: 17:30 local (CEST) on Nov 14 is 16:30 UTC (CET).
        ("last 6m", datetime(2025, 11, 14, 16, 30, tzinfo=UTC), NOW),
        ("last 1y", NOW.replace(year=2025), NOW),
        ("this week", berlin(2026, 5, 11), NOW),
        ("last week", berlin(2026, 5, 4), berlin(2026, 5, 11)),
        ("this month", berlin(2026, 5, 1), NOW),
        ("last month", berlin(2026, 4, 1), berlin(2026, 5, 1)),
        ("this quarter", berlin(2026, 4, 1), NOW),
        ("last quarter", berlin(2026, 1, 1), berlin(2026, 4, 1)),
        ("this year", berlin(2026, 1, 1), NOW),
        ("last year", berlin(2025, 1, 1), berlin(2026, 1, 1)),
        ("2026-01-01..2026-03-31", berlin(2026, 1, 1), berlin(2026, 4, 1)),
        ("2026-01-01 .. 2026-03-31", berlin(2026, 1, 1), berlin(2026, 4, 1)),
        ("2026-02-14", berlin(2026, 2, 14), berlin(2026, 2, 15)),
    ],
)
def test_periods(text: str, start: datetime, end: datetime) -> None:
    query = p(f"score {text}")
    assert isinstance(query, ScoreQuery)
    assert (query.period.start, query.period.end) == (start, end)
    assert query.period.start.tzinfo is UTC and query.period.end.tzinfo is UTC


def test_calendar_periods_follow_the_given_time_zone() -> None:
    query = parse("this month", NOW, UTC_ZONE)
    assert isinstance(query, ScoreQuery) and query.period.start == datetime(2026, 5, 1, tzinfo=UTC)
    # Just after midnight on May 1st in Tokyo it is still April in UTC.
    early = datetime(2026, 4, 30, 15, 30, tzinfo=UTC)
    tokyo = parse("this month", early, ZoneInfo("Asia/Tokyo"))
    assert isinstance(tokyo, ScoreQuery) and tokyo.period.start == datetime(2026, 4, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("last 30d", NOW - timedelta(days=60), NOW - timedelta(days=30)),
        ("last quarter", berlin(2025, 10, 1), berlin(2026, 1, 1)),
        ("this quarter", berlin(2026, 1, 1), berlin(2026, 4, 1)),  # to date, against the whole quarter before
        ("last month", berlin(2026, 3, 1), berlin(2026, 4, 1)),
        ("this week", berlin(2026, 5, 4), berlin(2026, 5, 11)),
        # 31 local days across the switch to summer time: still midnight to midnight in Berlin.
        ("2026-03-01..2026-03-31", berlin(2026, 1, 29), berlin(2026, 3, 1)),
        ("last 6m", datetime(2025, 5, 14, 15, 30, tzinfo=UTC), datetime(2025, 11, 14, 16, 30, tzinfo=UTC)),
    ],
)
def test_previous_period_is_the_same_length_just_before(text: str, start: datetime, end: datetime) -> None:
    query = p(text)
    assert isinstance(query, ScoreQuery)
    previous = query.period.previous()
    assert (previous.start, previous.end) == (start, end)


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "in_message", "example"),
    [
        ("scroe", "did you mean `score`", "/nps score last 30d"),
        ("scroe last 90d plan=pro", "did you mean `score`", "/nps score last 90d plan=pro"),
        ("trnd monthly", "did you mean `trend`", "/nps trend monthly"),
        ("coments", "did you mean `comments`", EXAMPLES["comments"]),
        ("campain pause x", "did you mean `campaign`", "/nps campaign pause x"),
        ("xyzzy", "/nps help", "/nps help"),
        ("score last", "`last` is not a period", EXAMPLES["score"]),
        ("score last 30x", "`last 30x` is not a period", EXAMPLES["score"]),
        ("score last 0d", "1 to 3660", EXAMPLES["score"]),
        ("score last 9999m", "1 to 120", EXAMPLES["score"]),
        ("score last weeks", "needs a number", EXAMPLES["score"]),
        ("score 2026-02-30", "does not exist", EXAMPLES["score"]),
        ("score 2026-03-31..2026-01-01", "ends before it starts", EXAMPLES["score"]),
        ("score 2026-01-01..", "not a date range", EXAMPLES["score"]),
        ("score 1900-01-01..1900-01-02", "between 1970", EXAMPLES["score"]),
        ("score last 30d this month", "one period only", EXAMPLES["score"]),
        ("score banana", "`banana`", EXAMPLES["score"]),
        ('score "unclosed', "not closed", EXAMPLES["score"]),
        ('comments "unclosed', "not closed", EXAMPLES["comments"]),
        ("score channel:fax", "`sms` or `email`", "/nps score channel:sms"),
        ("score plan:pro", "`plan:` is not a filter", "/nps score plan=pro"),
        ("score plan=", "has no value", EXAMPLES["score"]),
        ("score =pro", "has no name", EXAMPLES["score"]),
        ("score plan=pro plan=free", "given twice", EXAMPLES["score"]),
        ("score campaign:a campaign:b", "one `campaign:`", EXAMPLES["score"]),
        ("trend daily", "`weekly` or `monthly`", EXAMPLES["trend"]),
        ("trend weekly monthly", "not both", EXAMPLES["trend"]),
        ("compare", "needs a contact property", EXAMPLES["compare"]),
        ("compare plan region", "one property only", EXAMPLES["compare"]),
        ("comments page 0", "page", "/nps comments detractors page 2"),
        ("comments this is slow", "quote it", EXAMPLES["comments"]),
        ("followups everyone", "`mine`, `overdue` or `open`", EXAMPLES["followups"]),
        ("contact", "needs a phone number", EXAMPLES["contact"]),
        ("campaign stop pulse", "not a campaign action", EXAMPLES["campaign"]),
        ("campaign pase pulse", "did you mean `pause`", EXAMPLES["campaign"]),
        ("campaign pause", "needs the campaign's name", "/nps campaign pause quarterly-pulse"),
    ],
)
def test_errors_name_the_problem_and_give_the_closest_example(
    text: str, in_message: str, example: str
) -> None:
    failure = error(text)
    assert in_message in failure.message
    assert failure.example == example
    assert str(failure) == failure.message


def test_every_example_is_itself_valid() -> None:
    for example in EXAMPLES.values():
        parse(example.removeprefix("/nps "), NOW, BERLIN)


def test_an_overlong_text_is_refused() -> None:
    assert "characters" in error("score " + "x" * 2000).message


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        parse("score", datetime(2026, 5, 14), BERLIN)


# --- robustness ------------------------------------------------------------------------------------------

WORDS = st.sampled_from(
    ["score", "trend", "compare", "comments", "followups", "contact", "campaign", "campaigns", "help", "last",
     "this", "30d", "12w", "6m", "quarter", "month", "weekly", "monthly", "page", "2", "detractors", "..",
     "2026-01-01", "2026-02-30..2026-01-01", "9999-12-31", "campaign:", "channel:sms", "plan=", "=", ":", '"',
     "'", "“", "\\", "<mailto:a@b.c|a>", "&amp;", "pause", "run", "by", "0000-00-00", "last 999999d",
     "themes", "theme", "show", "add", "remove", "list"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=8),
    st.sampled_from([BERLIN, UTC_ZONE, ZoneInfo("Pacific/Kiritimati")]),
)
def test_parse_never_raises_anything_but_grammar_error(parts: list[str], tz: ZoneInfo) -> None:
    try:
        parse(" ".join(parts), NOW, tz)
    except GrammarError as failure:
        assert failure.message and failure.example.startswith("/nps")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_parse_never_raises_on_arbitrary_text(text: str) -> None:
    with contextlib.suppress(GrammarError):
        parse(text, NOW, BERLIN)


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=1, max_size=20).filter(lambda s: s.strip()),
    st.text(min_size=1, max_size=20).filter(lambda s: s.strip()),
)
def test_property_filters_round_trip_through_quoting(key: str, value: str) -> None:
    filters = Filters(properties=((key.strip(), value.strip()),))
    try:  # as Slack sends it: &, < and > escaped
        query = parse(f"score {escape(filters_text(filters))}", NOW, BERLIN)
    except GrammarError:
        assert '"' in key or key.strip().casefold() in ("campaign", "channel")
        return
    if key.strip().casefold() not in ("campaign", "channel"):
        assert isinstance(query, ScoreQuery) and query.filters == filters
