"""Themes: words and phrases per category in every shipped script, and the words detractors use more than
promoters, with a hand-computed z-test. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from campaigns.scores.periods import Period
from campaigns.scores.themes import themes
from campaigns.scores.tokens import comment_terms
from service.cli import cli
from storage.db import Database
from storage.enums import Category
from tests.fixtures.seeding import Seeder

AT = datetime(2026, 5, 10, tzinfo=UTC)
MAY = Period(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("comment", "words", "phrases"),
    [
        (
            "The support team was SLOW, and the app crashed",
            {"support", "team", "slow", "app", "crashed"},
            {"support team", "app crashed"},
        ),
        ("Der Support war sehr langsam", {"support", "langsam"}, set()),
        ("客服回复太慢了，等了三天", {"客服", "回复", "太慢", "三天"}, {"客服 回复", "回复 太慢"}),
        ("Hỗ trợ rất chậm", {"hỗ", "trợ", "chậm"}, {"hỗ trợ"}),
        ("Le prix est trop élevé", {"prix", "élevé"}, set()),
        ("الدعم بطيء جدا", {"الدعم", "بطيء"}, {"الدعم بطيء"}),
        ("not the price: 10/10!!", {"price"}, set()),
        ("slow https://x.example/slow-page ana@example.com &amp; support", {"slow", "support"}, set()),
    ],
)
def test_words_and_phrases_of_a_comment(comment: str, words: set[str], phrases: set[str]) -> None:
    assert comment_terms(comment) == (words, phrases)


def test_terms_per_category_and_what_detractors_say_more(db: Database) -> None:
    """20 detractors, 12 of them mention "slow support"; 20 promoters, 1 does. z for "slow":
    p_d = 12/20 = 0.6, p_p = 1/20 = 0.05, pooled 13/40 = 0.325; SE = sqrt(0.325 x 0.675 x (1/20 + 1/20))
    = 0.14811; z = 0.55 / 0.14811 = 3.71. "team" (5 and 5 mentions) is said alike: z = 0, not listed."""
    seed = Seeder(db)
    seed.responses([2] * 12, at=AT, comment="Slow support, again")
    seed.responses([3] * 8, at=AT, comment="The team was rude")
    seed.responses([10] * 1, at=AT, comment="slow support but fine")
    seed.responses([9] * 14, at=AT, comment="Great product")
    seed.responses([10] * 5, at=AT, comment="The team rocks")
    seed.responses([3] * 3, at=datetime(2026, 4, 1, tzinfo=UTC), comment="slow support in April")
    with db.transaction() as session:
        report = themes(session=session, period=MAY)
    assert report.comments[Category.DETRACTOR] == 20 and report.comments[Category.PROMOTER] == 20
    assert report.top(Category.DETRACTOR, 3) == [("slow support", 12), ("slow", 12), ("support", 12)]
    leaning = {item.term: item for item in report.leaning()}
    assert math.isclose(leaning["slow"].z, 3.713, abs_tol=0.001)
    assert (leaning["slow"].detractors, leaning["slow"].promoters) == (12, 1)
    assert "team" not in leaning and leaning["product"].z < 0  # promoters say "product" more


def test_nps_themes(db: Database) -> None:
    seed = Seeder(db)
    seed.responses([2] * 6, at=AT, comment="Slow support")
    seed.responses([10] * 6, at=AT, comment="Great product")
    url = db.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli,
        ["--env-file", os.devnull, "themes", "2026-05-01..2026-05-31", "--json"],
        env={"DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["comments"] == {"detractor": 6, "passive": 0, "promoter": 6}
    assert answer["top"]["detractor"][0] == {"term": "slow support", "comments": 6}
    assert answer["detractors_say_more"][0]["term"] in ("slow", "support", "slow support")
    table = CliRunner().invoke(
        cli, ["--env-file", os.devnull, "themes", "2026-05-01..2026-05-31"], env={"DATABASE_URL": url}
    )
    assert "slow support" in table.output and "product" in table.output


def test_a_saved_theme_is_tracked_per_week_within_its_filters(db: Database) -> None:
    """Week of 4 May: 4 comments of plan=pro, 2 mention "slow support" (one detractor, one passive: NPS -50);
    week of 11 May: 2 comments, none mention it. A basic customer's mention is outside the theme's filter."""
    seed = Seeder(db)
    week1, week2 = datetime(2026, 5, 5, tzinfo=UTC), datetime(2026, 5, 12, tzinfo=UTC)
    seed.responses([2], at=week1, comment="SLOW SUPPORT again", snapshot={"plan": "pro"})
    seed.responses([8], at=week1, comment="a bit slow support", snapshot={"plan": "pro"})
    seed.responses([10, 9], at=week1, comment="great", snapshot={"plan": "pro"})
    seed.responses([10, 10], at=week2, comment="fine", snapshot={"plan": "pro"})
    seed.responses([1], at=week2, comment="slow support", snapshot={"plan": "basic"})
    url = db.engine.url.render_as_string(hide_password=False)

    def nps(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": url})
        assert result.exit_code == 0, result.output
        return result.output

    assert "theme support: comments mentioning 'slow support' within plan=pro" in nps(
        "themes", "add", "support", "slow support", "plan=pro"
    )
    assert "support  'slow support'  plan=pro" in nps("themes", "list")
    points = json.loads(nps("themes", "show", "support", "weekly", "2026-05-04..2026-05-17", "--json"))
    assert [(p["start"][:10], p["comments"], p["mentions"], p["rate"], p["nps"]) for p in points] == [
        ("2026-05-04", 4, 2, 0.5, -50),
        ("2026-05-11", 2, 0, 0.0, None),
    ]
    again = CliRunner().invoke(
        cli, ["--env-file", os.devnull, "themes", "add", "support", "x"], env={"DATABASE_URL": url}
    )
    assert again.exit_code == 1 and "already a theme called `support`" in again.output
    dated = CliRunner().invoke(
        cli, ["--env-file", os.devnull, "themes", "add", "t", "x", "last", "30d"], env={"DATABASE_URL": url}
    )
    assert dated.exit_code == 1 and "not a period" in dated.output
    assert "theme support removed" in nps("themes", "remove", "support")
