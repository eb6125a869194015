"""The database: reachable within the timeout, and at the migration head these migration scripts end at."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from service.doctor.findings import TIMEOUT_SECONDS, Finding, fail, ok
from storage.bounded import timed_out
from storage.db import Database, current_revision, missing_sqlite_file
from storage.migrations_state import head_revision

SUBJECT = "database"
UPGRADE = "run `nps db upgrade`"


def shown_url(url: str) -> str:
    """The database URL without its password."""
    return make_url(url).render_as_string(hide_password=True)


def connect_with_timeout(url: str) -> Database:
    """A Database whose connection attempts give up after the timeout (SQLite has no network to wait on)."""
    if make_url(url).get_backend_name() == "postgresql":
        return Database.connect(url, connect_args={"connect_timeout": int(TIMEOUT_SECONDS)})
    return Database.connect(url)


def first_line(error: BaseException) -> str:
    """The driver's own message, first line (SQLAlchemy appends the statement and a link below it)."""
    cause = getattr(error, "orig", None) or error
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def check_database(url: str) -> list[Finding]:
    missing = missing_sqlite_file(url)
    if missing is not None:
        return [fail(SUBJECT, f"no database file at {missing}: {UPGRADE} to create it, or set DATABASE_URL")]
    db = connect_with_timeout(url)
    try:
        revision = current_revision(db.engine, timeout=timedelta(seconds=TIMEOUT_SECONDS))
    except OperationalError as error:
        if timed_out(error):
            return [
                fail(
                    SUBJECT,
                    f"{shown_url(url)} did not answer within {TIMEOUT_SECONDS:g} s "
                    "(a lock held on alembic_version, by a migration or maintenance): try again later",
                )
            ]
        return [fail(SUBJECT, f"cannot reach {shown_url(url)}: {first_line(error)}")]
    except SQLAlchemyError as error:
        return [fail(SUBJECT, f"cannot reach {shown_url(url)}: {first_line(error)}")]
    finally:
        db.dispose()
    head = head_revision()
    if revision is None:
        return [fail(SUBJECT, f"{shown_url(url)} is empty (no migration applied): {UPGRADE}")]
    if revision != head:
        return [
            fail(
                SUBJECT, f"{shown_url(url)} is at migration {revision}, this version needs {head}: {UPGRADE}"
            )
        ]
    return [ok(SUBJECT, f"{shown_url(url)} reachable, at the current migration ({head})")]
