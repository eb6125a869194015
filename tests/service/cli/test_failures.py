"""Commands that cannot start say why in one line and exit 1: no traceback, and no empty database left behind."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from service.cli import cli
from storage.db import Database

ROOT = Path(__file__).resolve().parents[3]


def nps(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": database_url})


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_missing_default_database_is_named_and_not_created(tmp_path: Path) -> None:
    env = {"DATABASE_URL": ""}
    result = nps("campaigns", "list", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"Error: no database at {tmp_path / 'nps.db'}: run `nps db upgrade` first, or set DATABASE_URL"
    )
    assert list(tmp_path.iterdir()) == []


def test_every_database_command_but_upgrade_leaves_a_missing_file_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nps.db'}"
    for args in (["db", "current"], ["alerts"], ["apikeys", "list"], ["contacts", "why", "c1"], ["worker"]):
        result = run(url, *args)
        assert result.exit_code == 1, (args, result.output)
        assert "run `nps db upgrade`" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "nps.db").exists()
    upgraded = run(url, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert (tmp_path / "nps.db").exists()


def test_an_unmigrated_database_asks_for_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    result = nps("campaigns", "list", env={"DATABASE_URL": f"sqlite:///{path}"})
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"Error: the database sqlite:///{path} is empty, not up to date: run `nps db upgrade`"
    )
    assert run(f"sqlite:///{path}", "db", "current").stdout.strip() == "empty (run `nps db upgrade`)"


def test_an_unreachable_postgresql_is_one_line_without_the_password() -> None:
    url = "postgresql+psycopg://nps:secret@127.0.0.1:9/nps"
    result = nps("campaigns", "list", env={"DATABASE_URL": url})
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert line.startswith("Error: cannot reach the database postgresql+psycopg://nps:***@127.0.0.1:9/nps: ")
    assert "secret" not in result.stderr


def test_a_missing_env_file_is_named(tmp_path: Path) -> None:
    result = nps("--env-file", str(tmp_path / "prod.env"), "campaigns", "list", env={})
    assert result.returncode == 1
    assert one_error_line(result.stderr) == f"Error: --env-file {tmp_path / 'prod.env'}: no such file"


def test_an_invalid_region_is_refused_before_the_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("external_id,phone\nc1,030 1234567\n")
    database_url = f"sqlite:///{tmp_path / 'nps.db'}"
    result = nps(
        "contacts", "import", str(path), "--default-region", "XX", env={"DATABASE_URL": database_url}
    )
    assert result.returncode == 2
    assert one_error_line(result.stderr) == (
        "Error: --default-region 'XX' is not a country code that phone numbers use (e.g. DE, US, GB)"
    )


def test_importing_the_cli_loads_none_of_the_heavy_libraries() -> None:
    """`nps --help` and the simple commands start fast: what only serving or sending needs is imported there."""
    heavy = (
        "slack_bolt",
        "slack_sdk",
        "twilio",
        "fastapi",
        "uvicorn",
        "matplotlib",
        "jinja2",
        "phonenumbers",
    )
    probe = f"import sys, service.cli; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.split() == []


def test_a_command_does_not_create_an_empty_sqlite_file_from_a_uri(tmp_path: Path) -> None:
    """`missing_sqlite_file` gave up on `file:` URIs, so `nps campaigns list` created the file it then called
    empty (SQLite's URI mode defaults to rwc)."""
    path = tmp_path / "nps.db"
    result = run(f"sqlite:///file:{path}?uri=true", "campaigns", "list")
    assert result.exit_code == 1
    assert not path.exists(), "an empty database file was created"


@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_command_fails_in_one_line_while_alembic_version_is_locked(database_url: str) -> None:
    """Every command's schema check (service.cli.context._check_schema) gives up on a lock held on
    alembic_version (VACUUM FULL, an ALTER TABLE, an operator's LOCK TABLE) instead of waiting on it."""
    holder = Database.connect(database_url)
    connection = holder.engine.connect()
    transaction = connection.begin()
    connection.execute(text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))
    outcome: list[Result] = []
    worker = threading.Thread(
        target=lambda: outcome.append(run(database_url, "campaigns", "list")), daemon=True
    )
    try:
        worker.start()
        worker.join(20)
        finished = not worker.is_alive()
    finally:
        transaction.rollback()
        connection.close()
        holder.dispose()
        worker.join(30)
    assert finished, "nps campaigns list still waiting on alembic_version after 20 s"
    assert outcome[0].exit_code == 1
    assert one_error_line(outcome[0].stderr).startswith("Error: the database ")


NPS = str(Path(sys.executable).with_name("nps"))


def _server(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_quietly, args=(serve, client), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def _quietly(serve: Callable[[socket.socket], None], client: socket.socket) -> None:
    try:
        serve(client)
    except OSError:
        pass
    finally:
        client.close()


def _silent(client: socket.socket) -> None:
    time.sleep(120)


@pytest.fixture
def silent_port() -> Iterator[int]:
    yield from _server(_silent)


def _run(
    args: list[str], env: dict[str, str], tmp_path: Path, limit: float = 30
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TWILIO_", "SMTP_", "NPS_"))}
    clean.pop("DATABASE_URL", None)
    try:
        return subprocess.run(
            [NPS, "--env-file", os.devnull, *args],
            env={**clean, **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"nps {' '.join(args)} still running after {limit} s")


def test_a_command_gives_up_on_a_postgresql_that_never_answers(silent_port: int, tmp_path: Path) -> None:
    """Every command's schema check (CliContext.open) connects with a timeout: a server that accepts TCP and
    says nothing (a stuck proxy, pgbouncer at its limit, a firewall that drops after the handshake) is one line."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent_port}/test"
    result = _run(["campaigns", "list"], {"DATABASE_URL": url}, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert one_error_line(result.stderr).startswith("Error: cannot reach the database ")
