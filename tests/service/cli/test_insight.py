"""`nps score`, `nps trend` and `nps compare`: hand-computed answers on a small fixed data set, on SQLite and
PostgreSQL, as a table and as JSON, with the `/nps` filter grammar."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from service.cli import cli
from storage.db import Database
from tests.fixtures.seeding import Seeder

MAY = "2026-05-01..2026-05-31"
IN_MAY = datetime(2026, 5, 13, 12, tzinfo=UTC)  # a Wednesday: the week of Monday 11 May
IN_APRIL = datetime(2026, 4, 15, 12, tzinfo=UTC)  # the 31 days before May 1 are the previous period


def nps(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": database_url})


@pytest.fixture
def data(db: Database) -> Database:
    """May: pro 30 promoters, 10 passives, 0 detractors (NPS +75); basic 20/20/20 (NPS 0); together 50/30/20,
    NPS +30. April, the previous period: 48/30/22, NPS +26."""
    seed = Seeder(db)
    seed.mix(30, 10, 0, at=IN_MAY, snapshot={"plan": "pro"})
    seed.mix(20, 20, 20, at=IN_MAY, snapshot={"plan": "basic", "region": "North America"})
    seed.mix(48, 30, 22, at=IN_APRIL, snapshot={"plan": "basic"})
    return db


def test_score_as_json_is_the_hand_computed_answer(data: Database, database_url: str) -> None:
    """NPS 30; Wald margin 1.96 x sqrt(0.61 / 100) = 15.31; adjusted Wald [14.05, 44.20] (derived in
    tests/campaigns/scores/test_intervals.py); change +4 against 26, within the margins, with
    P(rise) = Phi(4 / sqrt(61 + 63.24) x 10 / 10) = Phi(0.3589) = 0.640."""
    result = nps(database_url, "score", MAY, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert (answer["responses"], answer["promoters"], answer["passives"], answer["detractors"]) == (
        100,
        50,
        30,
        20,
    )
    assert (answer["nps"], answer["margin"]) == (30, 15.31)
    assert answer["interval_small_sample"] == {"low": 14.05, "high": 44.2}
    assert answer["previous"]["nps"] == 26 and answer["previous"]["responses"] == 100
    change = answer["change"]
    assert change["delta"] == 4.0 and change["significant"] is False
    assert change["probability_improved"] == pytest.approx(0.640, abs=0.001)
    assert answer["period"]["start"].startswith("2026-05-01")


def test_score_with_a_property_filter_as_a_table(data: Database, database_url: str) -> None:
    """pro alone: 30/10/0 of 40, NPS +75; margin 1.96 x sqrt((0.75 - 0.5625) / 40) x 100 = 13.4."""
    result = nps(database_url, "score", MAY, "plan=pro")
    assert result.exit_code == 0, result.output
    assert "NPS · 2026-05-01 to 2026-05-31" in result.output and "plan=pro" in result.output
    assert "+75 ±13" in result.output
    assert "40" in result.output and "30 (75%)" in result.output


def test_a_filter_value_with_spaces_arrives_as_one_shell_word(data: Database, database_url: str) -> None:
    """`region="North America"` in a shell reaches the command as `region=North America`: basic's 20/20/20."""
    result = nps(database_url, "score", MAY, "region=North America", "--json")
    assert result.exit_code == 0, result.output
    assert (json.loads(result.output)["responses"], json.loads(result.output)["nps"]) == (60, 0)


def test_trend_shows_weeks_without_answers_as_gaps(data: Database, database_url: str) -> None:
    result = nps(database_url, "trend", "weekly", MAY, "--json")
    assert result.exit_code == 0, result.output
    points = json.loads(result.output)
    answered = [p for p in points if p["responses"]]
    assert [p["start"][:10] for p in answered] == ["2026-05-11"] and answered[0]["nps"] == 30
    assert len(points) == 5 and all(p["nps"] is None for p in points if not p["responses"])
    table = nps(database_url, "trend", "weekly", MAY)
    assert "2026-05-11" in table.output and "+30" in table.output


def test_trend_writes_its_chart(data: Database, database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    chart = tmp_path / "trend.png"
    result = nps(database_url, "trend", "monthly", "2026-01-01..2026-06-30", "--png", str(chart))
    assert result.exit_code == 0, result.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "2026-04" in result.output and "+26" in result.output


def test_compare_ranks_the_segments_with_their_margins(data: Database, database_url: str) -> None:
    result = nps(database_url, "compare", "plan", MAY, "--json")
    assert result.exit_code == 0, result.output
    segments = json.loads(result.output)
    assert [(s["value"], s["nps"], s["responses"]) for s in segments] == [("pro", 75, 40), ("basic", 0, 60)]
    # basic: p = d = 1/3, variance 2/3, margin 1.96 x sqrt((2/3) / 60) x 100 = 20.66
    assert segments[1]["margin"] == 20.66
    table = nps(database_url, "compare", "plan", MAY)
    assert table.output.index("pro") < table.output.index("basic")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["score", "channel:fax"], "fax"),
        (["score", MAY, "campaign:nope"], "nope"),
        (["compare"], "Missing argument"),
        (["trend", "fortnightly"], "fortnightly"),
    ],
)
def test_a_query_it_cannot_answer_is_one_line_not_a_traceback(
    data: Database, database_url: str, args: list[str], says: str
) -> None:
    result = nps(database_url, *args)
    assert result.exit_code != 0
    assert says in result.output and "Traceback" not in result.output


def test_trend_png_to_a_place_that_cannot_be_written_is_one_line(data: Database, database_url: str) -> None:
    for target in ("/proc/trend.png", "/nonexistent-dir/trend.png"):
        result = nps(database_url, "trend", MAY, "--png", target)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert target in result.output and "Error" in result.output


def test_a_monthly_trend_too_long_does_not_suggest_monthly(data: Database, database_url: str) -> None:
    result = nps(database_url, "trend", "monthly", "1970-01-01..2999-12-31")
    assert result.exit_code == 1 and "more than 120 months; choose a shorter period" in result.output
    assert "monthly`" not in result.output, result.output
    weekly = nps(database_url, "trend", "1970-01-01..2999-12-31")
    assert "more than 120 weeks; choose a shorter period or `monthly`" in weekly.output, weekly.output


def test_a_property_name_with_accents_filters_and_compares_on_sqlite_as_on_postgresql(
    db: Database, database_url: str
) -> None:
    """SQLite stores JSON keys escaped ("r\\u00e9gion") and its JSON paths compare the raw text: `région` found
    nothing there, while PostgreSQL found every answer."""
    Seeder(db).mix(2, 1, 1, at=IN_MAY, snapshot={"région": "Île-de-France", "plan": "pro"})
    compared = nps(database_url, "compare", "région", MAY, "--json")
    assert compared.exit_code == 0, compared.output
    assert [(s["value"], s["responses"]) for s in json.loads(compared.output)] == [("Île-de-France", 4)]
    scored = nps(database_url, "score", MAY, "région=île-de-france", "--json")
    assert json.loads(scored.output)["responses"] == 4, scored.output


def test_score_shows_the_configured_industry_benchmark(data: Database, database_url: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["--env-file", os.devnull, "score", MAY, "--json"],
        env={"DATABASE_URL": database_url, "NPS_BENCHMARK": "B2B software=+41"},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["benchmark"] == {"label": "B2B software", "score": 41, "difference": -11}
    table = CliRunner().invoke(
        cli,
        ["--env-file", os.devnull, "score", MAY],
        env={"DATABASE_URL": database_url, "NPS_BENCHMARK": "SaaS=30"},
    )
    assert "benchmark (SaaS)" in table.output and "+30: level with it" in table.output


def test_compare_and_drivers_write_their_charts(data: Database, database_url: str, tmp_path: Path) -> None:
    for args in (["compare", "plan", MAY], ["drivers", MAY]):
        chart = tmp_path / f"{args[0]}.png"
        result = nps(database_url, *args, "--png", str(chart))
        assert result.exit_code == 0, result.output
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    nowhere = nps(database_url, "compare", "plan", MAY, "--png", str(tmp_path / "missing" / "c.png"))
    assert nowhere.exit_code == 1 and "Traceback" not in nowhere.output


def test_compare_shows_each_segments_impact_on_the_overall_score(data: Database, database_url: str) -> None:
    """Overall +30; without pro's mix (the rest, basic, scores 0) it would be 0: impact +30; basic's rest (pro)
    scores 75: impact -45 (derived in tests/campaigns/scores/test_segment_impact_and_trend_change.py)."""
    result = nps(database_url, "compare", "plan", MAY, "--json")
    assert [(s["value"], s["impact"]) for s in json.loads(result.output)] == [("pro", 30.0), ("basic", -45.0)]
    table = nps(database_url, "compare", "plan", MAY)
    assert "impact" in table.output and "+30" in table.output and "-45" in table.output
    assert "if the segment scored like the rest" in table.output


def test_trend_tells_the_significance_of_its_last_change(data: Database, database_url: str) -> None:
    """May +30 against April +26: +4 -+ 21.85, within the margins, 64% likely a real rise; March and June are
    gaps and are stepped over."""
    result = nps(database_url, "trend", "monthly", "2026-03-01..2026-06-30", "--json")
    assert result.exit_code == 0, result.output
    points = json.loads(result.output)
    assert [p["change"] for p in points][::3] == [None, None]
    change = points[2]["change"]
    assert change["from"].startswith("2026-04-01") and change["delta"] == 4.0
    assert (change["low"], change["high"], change["significant"]) == (-17.85, 25.85, False)
    assert change["probability_improved"] == pytest.approx(0.640, abs=0.001)
    table = nps(database_url, "trend", "monthly", "2026-03-01..2026-06-30")
    assert (
        "Last change: +4 (2026-05 against 2026-04), within the margins; 64% likely a real rise"
        in " ".join(table.output.split())
    ), table.output
