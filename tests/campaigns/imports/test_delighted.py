"""`nps import delighted`: a Delighted responses export becomes responses, contacts and opt-outs, once."""

from __future__ import annotations

import io
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy import select

from campaigns.imports.delighted import import_delighted
from campaigns.imports.delighted_rows import RowError, parse_time
from campaigns.scores.filters import Filters
from campaigns.scores.nps import categorize
from campaigns.scores.periods import Period
from campaigns.scores.queries import compare, score
from service.cli import cli
from storage.db import Database
from storage.enums import Channel, ConsentSource, ConsentStatus
from storage.tables import Consent, ConsentChange, Contact, FollowUp, Response

# As Delighted wrote it: a BOM, its column names, person properties as their own columns, a CSAT row.
EXPORT = (
    "\ufeffResponse ID,Date,Name,Email,Phone number,Score,Comment,Permalink,Tags,Notes,Survey type,Plan,Region\r\n"
    '101,2025-11-03 09:15:00 UTC,Ana Lima,Ana.Lima@Example.com,,10,"Fast, kind support",https://app.delighted.com/r/a,'
    '"support, speed",,nps,pro,EU\r\n'
    "102,2025-11-04 10:00:00 UTC,Bo Chen,,+14155550123,3,Slow,,,Called back,nps,basic,US\r\n"
    "103,2025-12-01T08:00:00Z,,,,8,,,,,nps,basic,US\r\n"
    "104,2025-12-02 08:00:00 UTC,Cy,cy@example.com,,4,,,,,csat,pro,EU\r\n"
    "105,2025-12-03 08:00:00 UTC,Di,di@example.com,,eleven,,,,,nps,pro,EU\r\n"
    "106,2025-12-04 08:00:00 UTC,Ed,not-an-email,,9,,,,,nps,pro,EU\r\n"
    "107,1764835200,Ana Lima,ana.lima@example.com,,9,Again great,,,,nps,pro,EU\r\n"
)
UNSUBSCRIBED = "Email,Name,Unsubscribed at\r\nana.lima@example.com,Ana Lima,2025-12-05 10:00:00 UTC\r\n"
BOUNCED = "Email,Name\r\nbounced@example.com,Gone\r\n"


def nps(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": database_url})


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, text in (("export", EXPORT), ("unsubscribed", UNSUBSCRIBED), ("bounced", BOUNCED)):
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_bytes(text.encode("utf-8"))
    return paths


def test_responses_contacts_and_opt_outs_arrive_once(
    db: Database, database_url: str, files: dict[str, Path]
) -> None:
    args = ["import", "delighted", str(files["export"]), "--unsubscribed", str(files["unsubscribed"])]
    first = nps(database_url, *args, "--bounced", str(files["bounced"]))
    assert first.exit_code == 1, first.output  # two rows could not be read
    assert (
        "4 responses imported, 0 already there, 1 not NPS (skipped), 2 not readable; 2 contacts created"
        in first.output
    )
    assert "export.csv:6: the score 'eleven' is not a whole number from 0 to 10" in first.output
    assert "export.csv:7: email: 'not-an-email' is not a valid email address" in first.output
    assert (
        "unsubscribed: 1 addresses opted out" in first.output
        and "bounced: 1 addresses opted out" in first.output
    )

    again = nps(database_url, *args)
    assert "0 responses imported, 4 already there" in again.output
    assert "unsubscribed: 0 addresses opted out, 1 already opted out" in again.output

    with db.transaction() as session:
        responses = session.scalars(select(Response).order_by(Response.answered_at)).all()
        assert [(r.score, r.source_key) for r in responses] == [
            (10, "delighted:101"),
            (3, "delighted:102"),
            (8, "delighted:103"),
            (9, "delighted:107"),
        ]
        ana = responses[0]
        assert ana.comment == "Fast, kind support" and ana.contact_snapshot == {"plan": "pro", "region": "EU"}
        assert ana.imported == {
            "source": "delighted",
            "tags": ["support", "speed"],
            "permalink": "https://app.delighted.com/r/a",
        }
        assert responses[1].imported == {"source": "delighted", "notes": "Called back"}
        assert (responses[1].channel, responses[0].channel) == (Channel.SMS, Channel.EMAIL)
        assert responses[2].contact_id is None  # an anonymous link answer
        assert responses[3].contact_id == ana.contact_id  # the same person, found by email
        assert responses[3].answered_at.isoformat() == "2025-12-04T08:00:00+00:00"  # a Unix timestamp
        contacts = session.scalars(select(Contact).order_by(Contact.id)).all()
        assert [(c.external_id, c.name) for c in contacts] == [
            ("ana.lima@example.com", "Ana Lima"),
            ("+14155550123", "Bo Chen"),
        ]
        assert session.scalars(select(FollowUp)).all() == []  # history opens no follow-up
        consent = session.scalar(select(Consent).where(Consent.address == "ana.lima@example.com"))
        assert consent is not None and consent.status is ConsentStatus.OPTED_OUT
        assert consent.changed_at.isoformat() == "2025-12-05T10:00:00+00:00"
        ledger = session.scalars(select(ConsentChange)).all()
        assert sorted((c.address, c.source, c.detail) for c in ledger) == [
            ("ana.lima@example.com", ConsentSource.IMPORT, "delighted unsubscribed"),
            ("bounced@example.com", ConsentSource.IMPORT, "delighted bounced"),
        ]


def test_trends_run_on_across_the_switch(db: Database, database_url: str, files: dict[str, Path]) -> None:
    """The imported snapshot is what filters and comparisons read (column names lower-cased, as the contacts
    import does): plan=pro is 10 and 9, NPS +100."""
    nps(database_url, "import", "delighted", str(files["export"]))
    from datetime import UTC, datetime

    autumn = Period(datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    with db.transaction() as session:
        assert (
            score(session=session, period=autumn, filters=Filters(properties=(("plan", "pro"),))).nps == 100
        )
        by_region = {s.value: s.nps for s in compare(session=session, property="region", period=autumn)}
        assert by_region == {"EU": 100, "US": -50}


def test_a_file_that_is_not_an_export_is_one_line(database_url: str, tmp_path: Path, db: Database) -> None:
    wrong = tmp_path / "contacts.csv"
    wrong.write_text("external_id,email\nc1,a@example.com\n", encoding="utf-8")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("Score,Date,Comment\n9,2025-01-01,très bien\n".encode("latin-1"))
    for path, says in ((wrong, "no score column"), (latin, "not valid UTF-8")):
        result = nps(database_url, "import", "delighted", str(path))
        assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-04-18 05:34:20 UTC", "2024-04-18T05:34:20+00:00"),
        ("2024-04-18 07:34:20 +0200", "2024-04-18T05:34:20+00:00"),
        ("2024-04-18T05:34:20Z", "2024-04-18T05:34:20+00:00"),
        ("1713418460", "2024-04-18T05:34:20+00:00"),
        ("2024-04-18 05:34", "2024-04-18T05:34:00+00:00"),
    ],
)
def test_delighted_times(text: str, iso: str) -> None:
    assert parse_time(text).isoformat() == iso


def test_a_time_it_cannot_read_says_so() -> None:
    with pytest.raises(RowError, match="not a time"):
        parse_time("last Tuesday")


def test_an_address_in_another_case_is_the_contact_we_send_to(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """Our contact's address is stored as the contacts file had it ("Ana.Lima@Example.com", domain lower-cased
    by validation); Delighted wrote it in other cases. Local parts are case-insensitive at every real provider:
    the answers join that contact and the opt-out applies to the address we actually send to."""
    with db.transaction() as session:
        session.add(
            Contact(external_id="crm-1", name="Ana Lima", email="Ana.Lima@example.com", properties={})
        )
    export = tmp_path / "export.csv"
    export.write_text(
        "Response ID,Date,Email,Score\r\n201,2025-11-03 09:15:00 UTC,ANA.LIMA@EXAMPLE.COM,9\r\n",
        encoding="utf-8",
    )
    unsubscribed = tmp_path / "unsubscribed.csv"
    unsubscribed.write_text("Email\r\naNa.lImA@example.com\r\n", encoding="utf-8")
    result = nps(database_url, "import", "delighted", str(export), "--unsubscribed", str(unsubscribed))
    assert result.exit_code == 0, result.output
    assert "1 responses imported" in result.output and "0 contacts created" in result.output
    with db.transaction() as session:
        (contact,) = session.scalars(select(Contact)).all()
        assert session.scalars(select(Response.contact_id)).all() == [contact.id]
        consents = session.scalars(select(Consent)).all()
        assert [(c.address, c.status, c.contact_id) for c in consents] == [
            ("Ana.Lima@example.com", ConsentStatus.OPTED_OUT, contact.id)
        ]


@pytest.mark.postgres
def test_two_imports_at_once_add_each_response_once_and_neither_fails(empty_postgres_db: Database) -> None:
    """A second import of the same export (two people running it, a retried cron job) inserts response 301
    while the first holds it uncommitted: PostgreSQL makes the second wait on the unique key, then refuses it.
    The batch is read again and the response counted as already there, not an IntegrityError traceback."""
    db = empty_postgres_db
    export = b"Response ID,Date,Email,Score\r\n301,2025-11-03 09:15:00 UTC,ana@example.com,9\r\n302,2025-11-04 09:15:00 UTC,bo@example.com,3\r\n"
    now = datetime(2026, 12, 1, tzinfo=UTC)
    outcome: dict[str, Any] = {}

    def second() -> None:
        try:
            outcome["report"] = import_delighted(db, io.BytesIO(export), now=now)
        except Exception as error:  # shown by the assertion below
            outcome["error"] = error

    with db.transaction() as first:
        first.add(
            Response(
                channel=Channel.EMAIL,
                score=9,
                category=categorize(9),
                contact_snapshot={},
                answered_at=datetime(2025, 11, 3, 9, 15, tzinfo=UTC),
                source_key="delighted:301",
            )
        )
        first.flush()
        thread = threading.Thread(target=second)
        thread.start()
        with db.engine.connect() as watcher:  # until the second import waits on the key
            for _ in range(500):
                waiting = watcher.scalar(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                )
                if waiting:
                    break
                time.sleep(0.01)
            assert waiting, "the second import never reached the uncommitted key"
    thread.join(timeout=30)
    assert "error" not in outcome, outcome
    report = outcome["report"]
    assert (report.imported, report.already_imported, report.contacts_created) == (1, 1, 1)
    with db.transaction() as session:
        keys = session.scalars(select(Response.source_key).order_by(Response.source_key)).all()
        assert keys == ["delighted:301", "delighted:302"]
        assert session.scalars(select(Contact.email)).all() == ["bo@example.com"]


def test_an_export_without_response_ids_keeps_a_long_addressed_persons_answers_apart(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """Without a Response ID column a response is keyed by person, time and score. An address long enough to
    fill the key's 160 characters must not make every answer of that person "already there"."""
    email = "ana.lima@" + ".".join(["support-and-customer-success-department"] * 4) + ".example.com"
    export = tmp_path / "export.csv"
    export.write_text(
        f"Date,Email,Score\r\n2025-11-03 09:15:00 UTC,{email},9\r\n2025-12-03 09:15:00 UTC,{email},4\r\n",
        encoding="utf-8",
    )
    first = nps(database_url, "import", "delighted", str(export))
    assert "2 responses imported, 0 already there" in first.output, first.output
    again = nps(database_url, "import", "delighted", str(export))
    assert "0 responses imported, 2 already there" in again.output, again.output
    with db.transaction() as session:
        assert sorted(session.scalars(select(Response.score)).all()) == [4, 9]


def test_history_never_overwrites_a_contacts_current_address_or_name(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """A first import made the contact "ana@example.com"; she has since changed address (contacts file). An
    import of an export that still has the old address finds her by that id and leaves what she is now alone:
    the next survey goes to the address she gave last, not to one from Delighted's history."""
    with db.transaction() as session:
        session.add(
            Contact(
                external_id="ana@example.com", name="Ana Lima", email="ana.new@example.com", properties={}
            )
        )
    export = tmp_path / "export.csv"
    export.write_text(
        "Response ID,Date,Name,Email,Score\r\n401,2025-11-03 09:15:00 UTC,A. Lima,ana@example.com,9\r\n",
        encoding="utf-8",
    )
    result = nps(database_url, "import", "delighted", str(export))
    assert "1 responses imported" in result.output and "0 contacts created" in result.output, result.output
    with db.transaction() as session:
        (contact,) = session.scalars(select(Contact)).all()
        assert (contact.email, contact.name) == ("ana.new@example.com", "Ana Lima")
        assert session.scalars(select(Response.contact_id)).all() == [contact.id]


def test_a_nul_character_in_a_cell_is_one_bad_row_not_a_failed_import(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL stores no NUL character in text or JSON; a damaged export may carry one. That row is reported
    with its line, the others are imported, on SQLite as on PostgreSQL."""
    export = tmp_path / "export.csv"
    export.write_bytes(
        b"Response ID,Date,Score,Comment,Plan\r\n"
        b"501,2025-11-03 09:15:00 UTC,9,fine,pro\r\n"
        b"502,2025-11-04 09:15:00 UTC,3,bro\x00ken,pro\r\n"
        b"503,2025-11-05 09:15:00 UTC,7,ok,ba\x00sic\r\n"
        b"504,2025-11-06 09:15:00 UTC,8,ok,basic\r\n"
    )
    result = nps(database_url, "import", "delighted", str(export))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "2 responses imported" in result.output and "2 not readable" in result.output, result.output
    assert "export.csv:3: " in result.output and "export.csv:4: " in result.output
    with db.transaction() as session:
        assert sorted(session.scalars(select(Response.source_key)).all()) == [
            "delighted:501",
            "delighted:504",
        ]


def test_a_file_broken_halfway_keeps_and_says_what_came_before(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """A field past the CSV reader's limit (a 200 KB cell, or an unclosed quote swallowing the rest) stops the
    file there. The rows before it are imported, all of them, and the error says so: a second run after the
    file is mended adds nothing twice."""
    export = tmp_path / "export.csv"
    export.write_text(
        "Response ID,Date,Score,Comment\r\n"
        "601,2025-11-03 09:15:00 UTC,9,fine\r\n"
        "602,2025-11-04 09:15:00 UTC,3,slow\r\n"
        f"603,2025-11-05 09:15:00 UTC,7,{'x' * 200_000}\r\n"
        "604,2025-11-06 09:15:00 UTC,8,ok\r\n",
        encoding="utf-8",
    )
    result = nps(database_url, "import", "delighted", str(export))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "line 4" in result.output and "2 responses before it were imported" in result.output, result.output
    with db.transaction() as session:
        assert sorted(session.scalars(select(Response.source_key)).all()) == [
            "delighted:601",
            "delighted:602",
        ]
