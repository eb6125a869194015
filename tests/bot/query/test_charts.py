from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.query.charts import trend_png
from campaigns.scores.nps import Tally, margin_of_error, nps
from campaigns.scores.queries import TrendPoint
from tests.fixtures.seeding import BERLIN

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MONDAY = datetime(2026, 3, 1, 23, tzinfo=UTC)  # Monday March 2nd, midnight in Berlin


def point(i: int, tally: Tally, days: int = 7) -> TrendPoint:
    start = MONDAY + timedelta(days=days * i)
    return TrendPoint(start, start + timedelta(days=days), tally, nps(tally), margin_of_error(tally))


def png_size(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize("count", [0, 1, 2, 12, 60])
def test_it_draws_a_png_for_any_number_of_points(count: int) -> None:
    points = [point(i, Tally(10 + i, 5, i % 7)) for i in range(count)]
    data = trend_png(points, "NPS by week", tz=BERLIN)
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5_000
    width, height = png_size(data)
    assert width >= 1000 and 500 <= height < width  # landscape, large enough for Slack's preview


def test_empty_buckets_and_extreme_scores_are_drawn() -> None:
    points = [point(0, Tally(5)), point(1, Tally()), point(2, Tally(detractors=3)), point(3, Tally(1, 1, 1))]
    assert trend_png(points, "gaps", tz=BERLIN).startswith(PNG_SIGNATURE)


def test_monthly_points_and_a_unicode_title() -> None:
    points = [point(i, Tally(3, 2, 1), days=30) for i in range(6)]
    assert trend_png(points, "NPS — région «Europe»").startswith(PNG_SIGNATURE)


def test_it_never_touches_pyplot() -> None:
    code = (
        "import sys; from bot.query.charts import trend_png; trend_png([], 'x'); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])
