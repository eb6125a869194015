"""Drivers: planted effects found, ranked by impact, and two properties that describe the same people counted
once. Hand-computed; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from campaigns.scores.drivers import drivers
from campaigns.scores.periods import Period
from storage.db import Database
from tests.fixtures.seeding import Seeder

AT = datetime(2026, 5, 10, tzinfo=UTC)
MAY = Period(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


def plant(db: Database) -> None:
    """enterprise (tier gold, the same 40 people): 40 promoters, NPS +100. basic (tier silver, 60): 10/20/30,
    NPS -33.3. Overall 50/20/30, NPS +20. Each region has half of each plan, so region changes nothing."""
    seed = Seeder(db)
    for region in ("EU", "US"):
        seed.mix(20, 0, 0, at=AT, snapshot={"plan": "enterprise", "tier": "gold", "region": region})
        seed.mix(5, 10, 15, at=AT, snapshot={"plan": "basic", "tier": "silver", "region": region})


def test_planted_drivers_are_ranked_by_impact_and_repeats_say_so(db: Database) -> None:
    """basic: share 0.6, NPS -33.3 against the rest's +100: impact 0.6 x (-133.3) = -80 points.
    enterprise: share 0.4, +100 against -33.3: impact 0.4 x 133.3 = +53.3 points. tier=silver and tier=gold are
    the same people as plan=basic and plan=enterprise (overlap 1.0): named, not counted again. The regions score
    exactly like each other: impact 0, not significant."""
    plant(db)
    with db.transaction() as session:
        found = drivers(session=session, period=MAY)
    head = [(d.key, d.value, round(d.impact, 1), d.same_people_as) for d in found[:4]]
    assert head == [
        ("plan", "basic", -80.0, None),
        ("tier", "silver", -80.0, "plan=basic"),
        ("plan", "enterprise", 53.3, None),
        ("tier", "gold", 53.3, "plan=enterprise"),
    ]
    basic = found[0]
    assert (basic.responses, basic.nps, basic.rest_nps, basic.significant) == (60, -33, 100, True)
    regions = [d for d in found if d.key == "region"]
    assert [d.impact for d in regions] == [pytest.approx(0.0), pytest.approx(0.0)]
    assert not any(d.significant for d in regions)


def test_small_segments_are_not_drivers(db: Database) -> None:
    seed = Seeder(db)
    seed.mix(0, 0, 9, at=AT, snapshot={"plan": "tiny"})
    seed.mix(30, 10, 10, at=AT, snapshot={"plan": "big"})
    with db.transaction() as session:
        assert [
            d.value for d in drivers(session=session, period=MAY)
        ] == []  # "big" is everyone else: no rest


def test_nps_drivers_shows_them(db: Database) -> None:
    import json
    import os

    from click.testing import CliRunner

    from service.cli import cli

    plant(db)
    url = db.engine.url.render_as_string(hide_password=False)

    def nps(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": url})
        assert result.exit_code == 0, result.output
        return result.output

    answer = json.loads(nps("drivers", "2026-05-01..2026-05-31", "--top", "2", "--json"))
    assert [(d["property"], d["value"], d["impact"], d["same_people_as"]) for d in answer] == [
        ("plan", "basic", -80.0, None),
        ("tier", "silver", -80.0, "plan=basic"),
    ]
    table = nps("drivers", "2026-05-01..2026-05-31")
    assert "plan=enterprise" in table and "+53.3" in table and "same people as plan=basic" in table
