"""Account NPS with the mix of roles, hand-counted; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from click.testing import CliRunner

from campaigns.scores.accounts import accounts
from campaigns.scores.periods import Period
from service.cli import cli
from storage.db import Database
from tests.fixtures.seeding import Seeder

AT = datetime(2026, 5, 10, tzinfo=UTC)
MAY = Period(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


def seed(db: Database) -> None:
    """Acme: 3 admins all promoters, 2 developers detractors: 3/0/2 of 5, NPS +20. Globex: 1 finance passive
    (" globex " spelt loosely is the same account). One answer without an account."""
    s = Seeder(db)
    s.mix(3, 0, 0, at=AT, snapshot={"account": "Acme", "role": "admin"})
    s.mix(0, 0, 2, at=AT, snapshot={"account": "Acme", "role": "developer"})
    s.mix(0, 1, 0, at=AT, snapshot={"account": " globex ", "role": "finance"})
    s.mix(1, 0, 0, at=AT, snapshot={"role": "admin"})


def test_each_account_with_its_score_and_roles(db: Database) -> None:
    seed(db)
    with db.transaction() as session:
        found = accounts(session=session, period=MAY)
    assert [(a.account, a.responses, a.nps, a.roles) for a in found] == [
        ("Acme", 5, 20, {"admin": 3, "developer": 2}),
        ("(none)", 1, 100, {"admin": 1}),
        ("globex", 1, 0, {"finance": 1}),
    ]


def test_nps_accounts_as_json(db: Database) -> None:
    seed(db)
    url = db.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli,
        ["--env-file", os.devnull, "accounts", "2026-05-01..2026-05-31", "--json"],
        env={"DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output
    first = json.loads(result.output)[0]
    assert first == {
        "account": "Acme",
        "responses": 5,
        "nps": 20,
        "margin": first["margin"],
        "roles": {"admin": 3, "developer": 2},
    }
    assert round(first["margin"], 1) == 85.9  # 1.96 x sqrt((0.6 + 0.4 - 0.04) / 5) x 100
