"""`nps contacts import`: good rows import, bad rows are reported by line, nothing half-written."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from service.cli import cli
from service.container import Container
from storage.db import Database
from storage.tables import AuditEntry, Contact

HEADER = "external_id,name,phone,email,locale,timezone,plan,region\n"


def run_import(database_url: str, path: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--env-file", os.devnull, "contacts", "import", str(path), *args],
        env={"DATABASE_URL": database_url},
    )
    return result.exit_code, result.stdout, result.stderr


def contacts(db: Database) -> dict[str, Contact]:
    with db.transaction() as session:
        return {c.external_id: c for c in session.scalars(select(Contact))}


def test_good_rows_import_and_bad_rows_are_reported_by_line(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    rows = [
        HEADER,
        "c1,Ana Lima,+4915112345678,ana@example.com,de,Europe/Berlin,pro,EU\n",  # line 2
        "c2,Bo,+1 555,,en,America/New_York,pro,US\n",  # line 3: bad phone
        "c3,Cy,,cy@example.com,fr,Mars/Olympus,free,EU\n",  # line 4: bad zone
        "c1,Ana Again,+4915112345678,,de,Europe/Berlin,pro,EU\n",  # line 5: duplicate id
        "c4,Dee,+33612345678,,fr,Europe/Paris,enterprise,EU\n",  # line 6
    ]
    data = "".join(rows).encode() + "c5,Andr\xe9,+33612345679,,fr,Europe/Paris,pro,EU\n".encode("cp1252")
    path = tmp_path / "contacts.csv"
    path.write_bytes(data)

    code, out, err = run_import(database_url, path)

    assert code == 1
    assert f"{path}:3: phone" in err
    assert f"{path}:4: timezone" in err
    assert f"{path}:5: duplicate external_id 'c1'" in err
    assert f"{path}:7: " in err and "UTF-8" in err
    assert "imported 2 contacts (2 new, 0 updated); 4 rows rejected" in out
    stored = contacts(db)
    assert set(stored) == {"c1", "c4"}
    assert stored["c1"].name == "Ana Lima"
    assert stored["c1"].properties == {"plan": "pro", "region": "EU"}
    assert stored["c4"].phone == "+33612345678"


def test_a_clean_file_exits_zero_and_upserts(database_url: str, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("\ufeffexternal_id;name;phone;plan\nc1;Ana;+4915112345678;pro\n", encoding="utf-8")
    assert run_import(database_url, path)[0] == 0
    path.write_text("external_id;name;phone;plan\nc1;Ana Lima;+4915112345678;enterprise\n", encoding="utf-8")
    code, out, _ = run_import(database_url, path)
    assert code == 0
    assert "imported 1 contacts (0 new, 1 updated)" in out
    assert contacts(db)["c1"].properties == {"plan": "enterprise"}
    with db.transaction() as session:
        assert session.scalars(select(AuditEntry.action)).all() == ["contacts.import", "contacts.import"]


def test_national_numbers_need_the_default_region(database_url: str, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("external_id,phone\nc1,030 1234567\n")
    code, _, err = run_import(database_url, path)
    assert code == 1 and ":2: phone" in err
    assert run_import(database_url, path, "--default-region", "DE")[0] == 0
    assert contacts(db)["c1"].phone == "+49301234567"


@pytest.mark.parametrize("region", ["XX", "Germany", ""])
def test_an_unknown_default_region_is_a_usage_error_not_a_traceback(
    database_url: str, db: Database, tmp_path: Path, region: str
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("external_id,phone\nc1,030 1234567\n")
    code, _, err = run_import(database_url, path, "--default-region", region)
    assert code == 2 and "--default-region" in err and "e.g. DE, US, GB" in err
    assert "Traceback" not in err
    assert contacts(db) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"name,phone\nAna,+4915112345678\n", "external_id")],
)
def test_an_unusable_file_is_refused_whole(
    database_url: str, db: Database, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(content)
    code, _, err = run_import(database_url, path)
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert contacts(db) == {}


def test_batches_are_written_whole(database_url: str, db: Database, tmp_path: Path) -> None:
    lines = [f"c{i},+4915112345{i:03d}\n" for i in range(25)]
    path = tmp_path / "contacts.csv"
    path.write_text("external_id,phone\n" + "".join(lines))
    code, out, _ = run_import(database_url, path, "--batch-size", "10")
    assert code == 0
    assert "imported 25 contacts" in out
    assert len(contacts(db)) == 25


def test_a_new_contact_needs_a_channel_but_an_update_may_omit_it(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("external_id,name,phone\nc1,Ana,+4915112345678\n")
    assert run_import(database_url, path)[0] == 0
    path.write_text("external_id,name,phone\nc1,Ana Lima,\nc2,Bo,\n")
    code, out, err = run_import(database_url, path)
    assert code == 1
    assert f"{path}:3: new contact needs a phone number or an email address" in err
    assert "imported 1 contacts (0 new, 1 updated); 1 rows rejected" in out
    stored = contacts(db)
    assert set(stored) == {"c1"}
    assert (stored["c1"].name, stored["c1"].phone) == ("Ana Lima", "+4915112345678")


def test_rows_over_the_property_limits_are_rejected_whole_by_line(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    columns = [f"p{i}" for i in range(51)]
    path = tmp_path / "contacts.csv"
    path.write_text(
        "external_id,phone,"
        + ",".join(columns)
        + "\n"
        + "c1,+4915112345678,"
        + ",".join("v" for _ in columns)
        + "\n"  # line 2: 51 properties
        + "c2,+4915112345679,long"
        + "x" * 1000
        + "," * 50
        + "\n"  # line 3: a value of 1004 characters
        + "c3,+4915112345670,pro"
        + "," * 50
        + "\n"  # line 4: one property
    )
    code, out, err = run_import(database_url, path)
    assert code == 1
    assert f"{path}:2: properties: has 51 properties; at most 50" in err
    assert f"{path}:3: properties: the value of 'p0' is too long (1004 characters; at most 1000)" in err
    assert "xxxx" not in err
    assert "imported 1 contacts (1 new, 0 updated); 2 rows rejected" in out
    assert {key: c.properties for key, c in contacts(db).items()} == {"c3": {"p0": "pro"}}


def test_an_import_cannot_grow_a_stored_contact_past_50_properties(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "contacts.csv"
    first = [f"a{i}" for i in range(30)]
    path.write_text("external_id,phone," + ",".join(first) + "\nc1,+4915112345678" + ",v" * 30 + "\n")
    assert run_import(database_url, path)[0] == 0
    more = [f"b{i}" for i in range(21)]
    path.write_text(
        "external_id,name," + ",".join(more) + "\nc1,Ana" + ",v" * 21 + "\nc2,Bo" + ",v" * 21 + "\n"
    )
    code, out, err = run_import(database_url, path)
    assert code == 1
    assert (
        f"{path}:2: properties: together with the properties already stored the contact would have 51" in err
    )
    assert f"{path}:3: new contact needs a phone number or an email address" in err
    assert "imported 0 contacts (0 new, 0 updated); 2 rows rejected" in out
    stored = contacts(db)["c1"]
    assert (stored.name, len(stored.properties)) == (None, 30)


def test_the_import_reads_customer_since_and_last_surveyed_at(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "external_id,phone,customer_since,last_surveyed_at\n"
        "c1,+4915112345678,2019-03-01,2026-10-02T09:30:00+02:00\n"
        "c2,+4915112345679,,\n"
        "c3,+4915112345670,1st of March,\n"
    )
    code, _, err = run_import(database_url, path)
    assert code == 1
    assert f"{path}:4: customer_since" in err and "is not a date" in err
    stored = contacts(db)
    assert stored["c1"].customer_since == datetime(2019, 3, 1, tzinfo=UTC)
    assert stored["c1"].last_surveyed_at == datetime(2026, 10, 2, 7, 30, tzinfo=UTC)
    assert stored["c1"].properties == {}
    assert stored["c2"].customer_since is None and stored["c2"].last_surveyed_at is None


# --- the consent ledger in `contacts why` and `contacts export` -----------------------------------------------


def _opt_out_and_back(engine: Container) -> None:
    from campaigns.contacts.consents import Cause, set_consent
    from storage.enums import Channel, ConsentSource, ConsentStatus
    from tests.fixtures.engine import add_contacts

    add_contacts(engine, [{"external_id": "ana", "phone": "+4915112345678", "email": "ana@example.com"}])
    with engine.db.transaction() as session:
        now = engine.clock.now()
        set_consent(
            Channel.SMS,
            "+4915112345678",
            ConsentStatus.OPTED_OUT,
            cause=Cause(ConsentSource.FREE_TEXT, "STOP TEXTING"),
            at=now,
            session=session,
        )
        set_consent(
            Channel.EMAIL,
            "ana@example.com",
            ConsentStatus.OPTED_OUT,
            cause=Cause(ConsentSource.UNSUBSCRIBE_LINK, "one-click"),
            at=now,
            session=session,
        )
        set_consent(
            Channel.SMS,
            "+4915112345678",
            ConsentStatus.OPTED_IN,
            cause=Cause(ConsentSource.KEYWORD, "START"),
            at=now,
            session=session,
        )


def nps(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": database_url})


def test_contacts_why_shows_the_consent_ledger(engine: Container, database_url: str) -> None:
    _opt_out_and_back(engine)
    why = nps(database_url, "contacts", "why", "ana")
    assert why.exit_code == 0, why.output
    lines = why.stdout.splitlines()
    start = lines.index("consent ledger:")
    assert [line.split(" UTC ", 1)[1] for line in lines[start + 1 : start + 4]] == [
        "sms +4915112345678: opted out by free_text (STOP TEXTING)",
        "email ana@example.com: opted out by unsubscribe_link (one-click)",
        "sms +4915112345678: opted in by keyword (START)",
    ]


def test_contacts_export_carries_the_consent_ledger(engine: Container, database_url: str) -> None:
    import json

    _opt_out_and_back(engine)
    export = nps(database_url, "contacts", "export", "ana")
    assert export.exit_code == 0, export.output
    data = json.loads(export.stdout)
    assert data["contact"]["external_id"] == "ana"
    assert [(c["channel"], c["status"]) for c in data["consents"]] == [
        ("sms", "opted_in"),
        ("email", "opted_out"),
    ]
    assert [(c["channel"], c["status"], c["source"], c["detail"]) for c in data["consent_ledger"]] == [
        ("sms", "opted_out", "free_text", "STOP TEXTING"),
        ("email", "opted_out", "unsubscribe_link", "one-click"),
        ("sms", "opted_in", "keyword", "START"),
    ]
    missing = nps(database_url, "contacts", "export", "zed")
    assert missing.exit_code == 1 and "no contact with external_id 'zed'" in missing.stderr


def test_contacts_why_names_the_quiet_hours_rule_of_an_override_file(
    engine: Container, database_url: str, tmp_path: Path
) -> None:
    from zoneinfo import ZoneInfo

    from tests.fixtures.engine import add_contacts, apply_yaml

    # The command reads the real clock: pick legal hours that exclude the present hour in Miami.
    # Florida's two zones: the window holds from its start in Central time to its end in Eastern time.
    hours = ("13:00", "16:00") if datetime.now(ZoneInfo("America/New_York")).hour < 12 else ("08:00", "10:00")
    override = tmp_path / "quiet.yaml"
    override.write_text(f'rules:\n  US-FL: {{start: "{hours[0]}", end: "{hours[1]}", source: our counsel}}\n')
    add_contacts(engine, [{"external_id": "flo", "phone": "+13052345678"}])
    apply_yaml(
        engine,
        """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    timezone: America/New_York
    send_window: {days: every day, start: "00:00", end: "23:59"}
""",
    )
    why = CliRunner().invoke(
        cli,
        ["--env-file", os.devnull, "contacts", "why", "flo"],
        env={"DATABASE_URL": database_url, "NPS_QUIET_HOURS_FILE": str(override)},
    )
    assert why.exit_code == 0, why.output
    rule = f"moved into legal quiet hours: US-FL {hours[0]}-{hours[1]} America/New_York and America/Chicago"
    assert rule in why.stdout
