"""Loop health: hand-counted on four detractors, on SQLite and PostgreSQL. Deadlines are 48 hours."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from campaigns.followups.actions import acknowledge, assign, resolve
from campaigns.scores.loop import loop_health
from campaigns.scores.periods import Period
from service.cli import cli
from storage.db import Database
from storage.enums import ContactMethod
from tests.fixtures.seeding import Seeder

ANSWERED = datetime(2026, 5, 10, 9, tzinfo=UTC)
MAY = Period(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
H = timedelta(hours=1)


def four_detractors(db: Database) -> None:
    """1: Ana acknowledges after 2 h and resolves after 10 h. 2: assigned to Bo after 4 h, resolved by Bo after
    30 h. 3: Ana acknowledges after 60 h, past the 48 h deadline, still open. 4: nobody touched it."""
    seed = Seeder(db)
    first, second, third, fourth = (seed.detractor(at=ANSWERED) for _ in range(4))
    assert acknowledge(db, first, user="U0ANA", now=ANSWERED + 2 * H)
    assert resolve(
        db, first, user="U0ANA", note="called", method=ContactMethod.PHONE_CALL, now=ANSWERED + 10 * H
    )
    assert assign(db, second, assignee="U0BO", by="U0ANA", now=ANSWERED + 4 * H)
    assert resolve(db, second, user="U0BO", note="emailed", method=ContactMethod.EMAIL, now=ANSWERED + 30 * H)
    assert acknowledge(db, third, user="U0ANA", now=ANSWERED + 60 * H)
    del fourth


def test_loop_health_overall_and_per_assignee(db: Database) -> None:
    four_detractors(db)
    with db.transaction() as session:
        report = loop_health(session=session, period=MAY)
    overall = report.overall
    assert (overall.followed_up, overall.touched, overall.touched_in_time, overall.resolved) == (4, 3, 2, 2)
    assert overall.median_first_touch == 4 * H  # of 2, 4 and 60 hours
    assert overall.median_resolution == 20 * H  # of 10 and 30 hours
    assert overall.share(overall.touched_in_time) == 0.5
    by = {h.group: (h.followed_up, h.touched_in_time, h.resolved) for h in report.by_assignee}
    assert by == {"U0ANA": (2, 1, 1), "U0BO": (1, 1, 1), "(nobody)": (1, 0, 0)}
    assert [(h.group, h.followed_up) for h in report.by_campaign] == [("(none)", 4)]


def test_nps_loop_as_json(db: Database) -> None:
    four_detractors(db)
    url = db.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli, ["--env-file", os.devnull, "loop", "2026-05-01..2026-05-31", "--json"], env={"DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["overall"] == {
        "group": "all",
        "followed_up": 4,
        "touched": 3,
        "touched_in_time": 2,
        "resolved": 2,
        "median_first_touch_hours": 4.0,
        "median_resolution_hours": 20.0,
    }
    table = CliRunner().invoke(
        cli, ["--env-file", os.devnull, "loop", "2026-05-01..2026-05-31"], env={"DATABASE_URL": url}
    )
    assert "U0BO" in table.output and "2 (50%)" in table.output
