"""eNPS on the command line and the HTTP API: every command that shows answers, as a table and as JSON, names
none of the staff who answered the anonymous campaign and says "fewer than 5 answers" where a group is too small;
exports and `GET /api/v1/responses` leave its answers out."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from service.cli import cli
from storage.db import Database
from tests.fixtures.anonymous import CARLA, HIDDEN, leaked

PERIOD = "2026-04-14..2026-05-14"  # Philippa's week (27 April) and everyone else's (11 May)


def nps(database_url: str, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    return result


def both(database_url: str, *args: str) -> tuple[str, str]:
    """The command's table and its --json document."""
    return nps(database_url, *args).output, nps(database_url, *args, "--json").output


def test_campaigns_list_says_which_campaign_is_anonymous(staff: Database, database_url: str) -> None:
    shown = nps(database_url, "campaigns", "list").output
    assert "relationship · anonymous" in shown


def test_score_of_a_small_department_is_hidden_in_the_table_and_the_json(
    staff: Database, database_url: str
) -> None:
    table, document = both(database_url, "score", PERIOD, "campaign:pulse", "department=Legal")
    assert HIDDEN in table
    answer = json.loads(document)
    assert answer["responses"] == 0 and answer["nps"] is None and HIDDEN in answer["hidden"]
    assert leaked(table + document) == []


def test_trend_hides_a_week_of_one_answer(staff: Database, database_url: str) -> None:
    table, document = both(database_url, "trend", PERIOD, "campaign:pulse")
    assert HIDDEN in table
    hidden = [p for p in json.loads(document) if "hidden" in p]
    # the week of 11 May is hidden beside Philippa's: the score (8 answers) minus its 7 would be hers
    assert [(p["start"][:10], p["responses"]) for p in hidden] == [("2026-04-27", 0), ("2026-05-11", 0)]
    assert leaked(table + document) == []


def test_compare_hides_the_small_segment(staff: Database, database_url: str) -> None:
    table, document = both(database_url, "compare", "department", PERIOD, "campaign:pulse")
    assert HIDDEN in table
    by_value = {s["value"]: (s["responses"], "hidden" in s) for s in json.loads(document)}
    # Engineering is hidden beside Legal: the score (8 answers) minus its 6 would be Legal's two
    assert by_value == {"Engineering": (0, True), "Legal": (0, True)}
    assert leaked(table + document) == []


def test_accounts_hide_the_small_account_and_its_roles(staff: Database, database_url: str) -> None:
    args = ("accounts", PERIOD, "campaign:pulse", "--by", "department")
    table, document = both(database_url, *args)
    assert HIDDEN in table
    by_account = {a["account"]: (a["responses"], a["roles"], "hidden" in a) for a in json.loads(document)}
    # Engineering is hidden beside Legal: the score (8 answers) minus its 6 would be Legal's two
    assert by_account == {"Engineering": (0, {}, True), "Legal": (0, {}, True)}
    assert leaked(table + document) == []


@pytest.mark.parametrize("command", ["funnel", "loop", "drivers"])
def test_funnel_loop_and_drivers_name_nobody(staff: Database, database_url: str, command: str) -> None:
    table, document = both(database_url, command, PERIOD)
    assert leaked(table + document) == []


def test_themes_leave_out_the_words_of_fewer_than_5(staff: Database, database_url: str) -> None:
    table, document = both(database_url, "themes", "report", PERIOD, "campaign:pulse")
    assert "pipeline" in table and "Horatio".casefold() not in (table + document).casefold()
    report = json.loads(document)
    assert report["comments"]["detractor"] == 0
    assert leaked(table + document) == []


def test_a_saved_theme_hides_a_week_with_one_mention(staff: Database, database_url: str) -> None:
    nps(database_url, "themes", "add", "manager", "manager", "campaign:pulse")
    table, document = both(database_url, "themes", "show", "manager", PERIOD)
    assert HIDDEN in table
    weeks = json.loads(document)
    assert [w["mentions"] for w in weeks] == [0] * len(weeks) and any("hidden" in w for w in weeks)
    assert leaked(table + document) == []


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_an_export_leaves_the_anonymous_campaign_out_and_says_so(
    staff: Database, database_url: str, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"responses{suffix}"
    said = nps(database_url, "export", "responses", str(out)).output
    assert "1 responses written" in said and "8 answers of anonymous (eNPS) campaigns left out" in said
    written = out.read_text(encoding="utf-8")
    assert CARLA.comment in written and leaked(written) == [] and "pipeline" not in written
    if suffix == ".csv":
        assert [row["campaign"] for row in csv.DictReader(io.StringIO(written))] == ["nps"]
    only_pulse = nps(database_url, "export", "responses", str(out), "campaign:pulse").output
    assert "0 responses written" in only_pulse and leaked(out.read_text(encoding="utf-8")) == []


def test_the_api_lists_no_answer_of_the_anonymous_campaign(
    staff: Database, client: TestClient, auth: dict[str, str]
) -> None:
    everything = client.get("/api/v1/responses", headers=auth)
    pulse = client.get("/api/v1/responses", params={"q": "campaign:pulse"}, headers=auth)
    assert everything.status_code == pulse.status_code == 200
    assert [r["campaign"] for r in everything.json()["responses"]] == ["nps"]
    assert pulse.json() == {"responses": [], "next": None}
    assert leaked(everything.text) == []


def test_a_campaign_file_cannot_take_anonymous_back(
    staff: Database, database_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "campaigns.yaml"
    file.write_text(
        "campaigns:\n  - {name: pulse, kind: relationship, brand: Acme}\n  - {name: new, kind: relationship}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["--env-file", os.devnull, "campaigns", "apply", str(file)], env={"DATABASE_URL": database_url}
    )
    assert result.exit_code == 1
    assert "nothing applied: pulse: `anonymous: true` cannot be taken back" in result.output
    listed = nps(database_url, "campaigns", "list").output
    assert "relationship · anonymous" in listed and "new" not in listed  # nothing was applied
