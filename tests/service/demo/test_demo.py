"""`nps demo`: runs on a fresh database, prints every insight section, writes the chart, and the commands find
what the company was planted with."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from campaigns.scores.drivers import drivers
from campaigns.scores.periods import Period
from campaigns.scores.themes import themes
from service.cli import cli
from storage.db import Database


def test_the_demo_prints_every_section_and_the_planted_effects_are_found(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--env-file", os.devnull, "demo", "--dir", str(tmp_path)], env={})
    assert result.exit_code == 0, result.output
    for heading in (
        "$ nps score",
        "$ nps trend",
        "$ nps compare plan",
        "$ nps drivers",
        "$ nps themes",
        "$ nps loop",
    ):
        assert heading in result.output
    assert "Traceback" not in result.output
    for name in ("trend.png", "compare-plan.png", "drivers.png"):
        chart = tmp_path / name
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000, name
        assert str(chart) in result.output

    now = datetime.now(UTC)
    year = Period(now - timedelta(days=366), now + timedelta(days=1))
    db = Database.connect(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        with db.transaction() as session:
            found = drivers(session=session, period=year)
            report = themes(session=session, period=year)
    finally:
        db.dispose()
    assert (found[0].key, found[0].value) == ("plan", "basic") and found[0].impact < 0
    apac = next(d for d in found if (d.key, d.value) == ("region", "APAC"))
    assert apac.impact < 0 and apac.significant
    detractors_say = {item.term for item in report.leaning() if item.z > 0}
    promoters_say = {item.term for item in report.leaning() if item.z < 0}
    assert {"slow", "billing errors"} <= detractors_say and "easy" in promoters_say


def test_a_second_run_in_the_same_directory_starts_afresh(tmp_path: Path) -> None:
    for _ in range(2):
        result = CliRunner().invoke(cli, ["--env-file", os.devnull, "demo", "--dir", str(tmp_path)], env={})
        assert result.exit_code == 0, result.output
    assert "4000 responses" in result.output
