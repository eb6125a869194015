"""Reads that give up instead of waiting: for the probes and scrapes an orchestrator or Prometheus times out.

`nps db upgrade` altering a table holds an ACCESS EXCLUSIVE lock for as long as it runs; a probe (`/readyz`) or a
scrape (`/metrics`) that waited on it would hang every web process at once. :func:`bounded_reads` gives one
connection whose statements give up after a timeout (PostgreSQL: a local statement and lock timeout; SQLite: its
busy timeout, put back afterwards), and :func:`timed_out` tells such a give-up from a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from storage.db import Database

# PostgreSQL: query_canceled (statement_timeout), lock_not_available (lock_timeout).
_TIMED_OUT_SQLSTATES = frozenset({"57014", "55P03"})


@contextmanager
def bounded_reads(db: Database, timeout: timedelta) -> Iterator[Database]:
    """`db` on one connection whose reads give up after `timeout`, in one transaction."""
    milliseconds = int(timeout.total_seconds() * 1000)
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # a connection setting, not a transaction's: put back before the pool hands it out again
            busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
            connection.exec_driver_sql(f"PRAGMA busy_timeout={milliseconds}")
            connection.commit()
        try:
            with connection.begin():
                if not sqlite:
                    connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
                yield Database(db.engine, sessionmaker(bind=connection, expire_on_commit=False))
        finally:
            if sqlite:
                connection.exec_driver_sql(f"PRAGMA busy_timeout={int(busy)}")


def timed_out(error: OperationalError) -> bool:
    """The database gave up waiting (a lock held elsewhere), not that it failed."""
    sqlstate = getattr(error.orig, "sqlstate", None)
    return sqlstate in _TIMED_OUT_SQLSTATES or "database is locked" in str(error.orig)
