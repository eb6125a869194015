from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.query import formatting
from bot.query.grammar import CommentsQuery, GrammarError, parse
from bot.query.help import HELP_TEXT
from campaigns.scores.filters import Filters
from campaigns.scores.nps import Tally, compare, margin_of_error, nps
from campaigns.scores.periods import Period
from campaigns.scores.queries import CommentItem, Page, ScoreReport, SegmentReport, TrendPoint
from storage.enums import Category, Channel
from tests.fixtures.seeding import BERLIN, NOW, all_text, assert_valid_blocks

PERIOD = Period(NOW - timedelta(days=30), NOW, label="last 30 days", tz=BERLIN)


def report(
    tally: Tally, previous: Tally | None = None, *, sent: int = 200, delivered: int = 180
) -> ScoreReport:
    def make(t: Tally, period: Period) -> ScoreReport:
        return ScoreReport(period, t, nps(t), margin_of_error(t), t.responses < 30, sent, delivered)

    current = make(tally, PERIOD)
    if previous is None:
        return current
    before = make(previous, PERIOD.previous())
    return ScoreReport(
        PERIOD,
        tally,
        current.nps,
        current.margin,
        current.low_sample,
        sent,
        delivered,
        before,
        compare(tally, previous),
    )


def test_describe_period_and_filters() -> None:
    assert formatting.describe_period(PERIOD) == "last 30 days (Apr 14 – May 14, 2026)"
    query = parse("score 2025-12-01..2026-01-31", NOW, BERLIN)
    assert formatting.describe_period(query.period) == "2025-12-01 to 2026-01-31 (Dec 1, 2025 – Jan 31, 2026)"  # type: ignore[union-attr]
    filters = Filters("pulse", Channel.SMS, (("region", "North America"),))
    assert formatting.describe_filters(filters) == 'campaign:pulse channel:sms region="North America"'


def test_score_blocks_show_the_score_margin_counts_and_rate() -> None:
    blocks = formatting.score_blocks(report(Tally(50, 30, 20), Tally(48, 30, 22)), "last 30 days", "plan=pro")
    assert_valid_blocks(blocks)
    text = all_text(blocks)
    assert "*NPS +30* ±15" in text
    assert "100 responses" in text and "last 30 days · plan=pro" in text
    assert (
        "*Promoters* 50 (50%)" in text and "*Passives* 30 (30%)" in text and "*Detractors* 20 (20%)" in text
    )
    assert "Response rate 56% of 180 delivered, 50% of 200 sent" in text
    assert "▲ +4 vs the previous period (NPS +26)" in text
    assert "significant" not in text and "low sample" not in text and "interval" not in text


def test_a_significant_change_is_flagged() -> None:
    text = all_text(formatting.score_blocks(report(Tally(80, 0, 20), Tally(20, 0, 80)), "last 30 days", ""))
    assert "▲ +120 vs the previous period (NPS -60) *(significant)*" in text


def test_a_drop_and_a_low_sample() -> None:
    text = all_text(formatting.score_blocks(report(Tally(2, 1, 7), Tally(5, 0, 0)), "this week", ""))
    assert "*NPS -50*" in text and "▼ -150" in text
    assert "low sample" in text and "10 responses" in text
    # Rocks's adjusted Wald (tests/campaigns/scores/test_intervals.py): n' = 13, p' = 2.75/13, d' = 7.75/13,
    # NPS' = -38.5 -+ 44.2: the interval that holds at small n, rounded outwards to whole points.
    assert "95% interval at this sample size: -83 to +6" in text


def test_a_change_within_the_margins_says_how_likely_it_is_real() -> None:
    """+4 against a margin of about +-22 for the difference: not significant, but more likely a rise than not:
    the difference's SE is sqrt(0.61/100 + 0.6324/100) = 11.15 points, z = 4 / 11.15 = 0.359, Phi(z) = 64%."""
    text = all_text(formatting.score_blocks(report(Tally(50, 30, 20), Tally(48, 30, 22)), "last 30 days", ""))
    assert "▲ +4 vs the previous period (NPS +26) · 64% likely a real rise" in text
    text = all_text(formatting.score_blocks(report(Tally(48, 30, 22), Tally(50, 30, 20)), "last 30 days", ""))
    assert "▼ -4 vs the previous period (NPS +30) · 64% likely a real drop" in text


def test_no_previous_answers_and_no_answers_at_all() -> None:
    text = all_text(formatting.score_blocks(report(Tally(40, 0, 0), Tally()), "last 30 days", ""))
    assert "No responses in the previous period" in text
    empty = formatting.score_blocks(report(Tally(), sent=0, delivered=0), "last 30 days", "campaign:x")
    assert_valid_blocks(empty)
    assert "*No responses* in last 30 days · campaign:x" in all_text(empty)
    assert "n/a" in all_text(empty)


def test_compare_blocks_table() -> None:
    segments = [
        SegmentReport("enterprise", Tally(40, 5, 5), 70, 12.3, False),
        SegmentReport("(none)", Tally(1, 0, 1), 0, 98.0, True),
        SegmentReport("<script> & co", Tally(0, 0, 40), -100, 0.0, False),
    ]
    blocks = formatting.compare_blocks(segments, "plan", "last 90 days", "")
    assert_valid_blocks(blocks)
    text = all_text(blocks)
    assert "*NPS by plan* · last 90 days" in text
    assert "enterprise" in text and "+70" in text and "±12" in text and "n=50" in text
    assert "&lt;script&gt; &amp; co" in text and "<script>" not in text
    assert "low sample" in text
    assert text.index("enterprise") < text.index("(none)") < text.index("script")


def test_compare_blocks_many_segments_stay_within_limits() -> None:
    segments = [SegmentReport(f"value-{i}-" + "x" * 50, Tally(i, 1, 1), 0, 5.0) for i in range(200)]
    blocks = formatting.compare_blocks(segments, "account", "last 90 days")
    assert_valid_blocks(blocks)
    assert "170 more values" in all_text(blocks)
    assert formatting.compare_blocks([], "plan", "last 90 days")[0]["text"]["text"].endswith(
        "No responses in this period."
    )


def test_compare_blocks_of_hostile_values_stay_within_limits_and_verbatim() -> None:
    segments = [SegmentReport(f"{i:02d}" + "<&>" * 10, Tally(i, 1, 1), 0, 5.0) for i in range(30)]
    blocks = formatting.compare_blocks(segments, "plan", "last 90 days")
    assert_valid_blocks(blocks)
    table = blocks[0]["text"]
    assert table["verbatim"] is True and table["text"].endswith("```")
    rows = table["text"].split("```")[1].splitlines()
    assert rows[0].startswith("00&lt;&amp;&gt;&lt;") and "<&" not in table["text"]
    assert f"…and {30 - len(rows)} more values." in all_text(blocks)


def comment(i: int, text: str = "Too slow", *, name: str | None = "Ada", score: int = 3) -> CommentItem:
    return CommentItem(NOW - timedelta(hours=i), score, text, name, "pulse", Channel.SMS, i)


def test_comments_blocks_list_comments_and_hint_the_next_page() -> None:
    query = parse("comments detractors slow last 30d", NOW, BERLIN)
    assert isinstance(query, CommentsQuery)
    page = Page([comment(i) for i in range(5)], total=12, page=1)
    blocks = formatting.comments_blocks(page, "last 30 days", next_command=query.command(page=2), tz=BERLIN)
    assert_valid_blocks(blocks)
    text = all_text(blocks)
    assert "Comments 1–5 of 12 · last 30 days" in text
    assert "> Too slow" in text and ":red_circle: *3* · Ada · pulse · sms · May 14, 17:30" in text
    assert 'More: `/nps comments detractors "slow" last 30d page 2`' in text


def test_comments_blocks_last_page_and_escaping() -> None:
    page = Page(
        [comment(0, "<!channel> it's  *bad* & slow\nsecond line", name=None, score=9)], total=6, page=2
    )
    blocks = formatting.comments_blocks(page, "last 30 days")
    assert_valid_blocks(blocks)
    text = all_text(blocks)
    assert "Comments 6–6 of 6" in text and "More" not in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "> second line" in text and "unknown contact" in text and ":large_green_circle:" in text


def test_comments_blocks_empty_and_past_the_end() -> None:
    assert "No comments in last 30 days" in all_text(
        formatting.comments_blocks(Page([], 0, 1), "last 30 days")
    )
    assert "past the last one" in all_text(formatting.comments_blocks(Page([], 3, 5), "last 30 days"))


def test_long_comments_are_clipped_within_limits() -> None:
    page = Page([comment(i, "word " * 2000) for i in range(5)], total=5, page=1)
    blocks = formatting.comments_blocks(page, "last 30 days")
    assert_valid_blocks(blocks)
    assert all(len(b["text"]["text"]) < 800 for b in blocks if b["type"] == "section")


def test_trend_text_lists_the_numbers() -> None:
    start = datetime(2026, 3, 1, 23, tzinfo=UTC)
    points = [
        TrendPoint(start, start + timedelta(days=7), Tally(8, 1, 1), 70, 20.1),
        TrendPoint(start + timedelta(days=7), start + timedelta(days=14), Tally(), None, None),
    ]
    text = formatting.trend_text(points, "NPS by week", tz=BERLIN)
    assert text.startswith("*NPS by week*\n```")
    assert "wk of Mar  2    +70   ±20  n=10" in text
    assert "wk of Mar  9      –        n=0" in text and "n=0" in text
    assert formatting.trend_text([], "x").endswith("No responses in this period.")
    many = [TrendPoint(start, start + timedelta(days=31), Tally(1), 100, 0.0)] * 500
    assert len(formatting.trend_text(many, "long", tz=BERLIN)) <= 3000
    assert_valid_blocks(formatting.trend_blocks(many, "long", tz=BERLIN))


def test_help_and_error_text() -> None:
    blocks = formatting.help_blocks(HELP_TEXT)
    assert_valid_blocks(blocks)
    assert all_text(blocks).count("/nps") >= 10
    error = GrammarError("`scroe` is not a command I know; did you mean `score`?", "/nps score last 30d")
    assert formatting.error_text(error) == (
        "`scroe` is not a command I know; did you mean `score`?\nTry `/nps score last 30d` or `/nps help`."
    )


def test_category_emoji_cover_every_category() -> None:
    assert set(formatting.CATEGORY_EMOJI) == set(Category)


def test_an_industry_benchmark_is_shown_beside_the_score() -> None:
    from campaigns.scores.nps import Benchmark

    blocks = formatting.score_blocks(
        report(Tally(50, 30, 20)), "last 30 days", "", benchmark=Benchmark("B2B software", 41)
    )
    assert_valid_blocks(blocks)
    assert "Benchmark (B2B software): +41 · 11 points below it" in all_text(blocks)
    above = formatting.score_blocks(
        report(Tally(80, 0, 20)), "last 30 days", "", benchmark=Benchmark("SaaS", 41)
    )
    assert "Benchmark (SaaS): +41 · 19 points above it" in all_text(above)


def test_compare_blocks_show_each_values_impact() -> None:
    segments = [
        SegmentReport("pro", Tally(30, 10, 0), 75, 13.4, False, 30.0),
        SegmentReport("basic", Tally(20, 20, 20), 0, 20.7, False, -45.0),
        SegmentReport("only", Tally(1, 0, 0), 100, 0.0, True, None),
    ]
    blocks = formatting.compare_blocks(segments, "plan", "last 90 days")
    assert_valid_blocks(blocks)
    rows = blocks[0]["text"]["text"].split("```")[1].splitlines()
    assert rows[0].endswith("n=40    impact  +30") and rows[1].endswith("n=60    impact  -45"), rows
    assert rows[2].endswith("impact  n/a *")
    assert "would move by minus that if it scored like the rest" in all_text(blocks)


def test_trend_blocks_tell_the_last_change_over_gaps() -> None:
    """+30 (50/30/20) after +26 (48/30/22) two weeks before, an empty week between: +4, within the margins,
    64% likely a real rise; -75 from +75 to 0 is significant."""
    start = datetime(2026, 4, 19, 22, tzinfo=UTC)  # Monday 20 April in Berlin
    week = timedelta(days=7)

    def point(i: int, tally: Tally) -> TrendPoint:
        return TrendPoint(start + i * week, start + (i + 1) * week, tally, nps(tally), margin_of_error(tally))

    rising = [point(0, Tally(48, 30, 22)), point(1, Tally()), point(2, Tally(50, 30, 20)), point(3, Tally())]
    blocks = formatting.trend_blocks(rising, "NPS by week", tz=BERLIN)
    assert_valid_blocks(blocks)
    assert blocks[-1]["elements"][0]["text"] == (
        "Last change: ▲ +4 (wk of May 4 against wk of Apr 20), within the margins · 64% likely a real rise"
    )
    falling = [point(0, Tally(30, 10, 0)), point(1, Tally(20, 20, 20))]
    line = formatting.trend_blocks(falling, "NPS by week", tz=BERLIN)[-1]["elements"][0]["text"]
    assert line.startswith("Last change: ▼ -75 (wk of Apr 27 against wk of Apr 20), *significant* at 95%")
    assert len(formatting.trend_blocks(rising[:2], "NPS by week", tz=BERLIN)) == 1  # one bucket answered
