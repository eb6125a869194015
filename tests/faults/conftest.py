"""The fault suite's own wiring: its engines, its processes, and the figures in the session's summary.

`db` here is SQLite or a PostgreSQL server of the suite's own (tests/fixtures/own_postgres.py), so nothing in
this folder needs TEST_DATABASE_URL, skips, or loads the machine's shared server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage.db import Database
from tests.faults.harness import FIGURES, Processes
from tests.fixtures.own_postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """The migrated database, once per engine (PostgreSQL: a fresh database on the suite's own server)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_db")
        return
    server: PostgresServer = request.getfixturevalue("own_postgres")
    database = Database.connect(server.new_database())
    yield database
    database.dispose()


@pytest.fixture
def processes() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.kill_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault suite figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
