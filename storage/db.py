"""Engine and session factories. Nothing is created at import time; the composition root calls these."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEFAULT_DATABASE_URL = "sqlite:///./nps.db"
SQLITE_BUSY_TIMEOUT_MS = 5000
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with SQLite tuned for a small service: WAL, foreign keys on, a busy timeout.

    `hide_parameters`: SQLAlchemy repeats a failed statement's parameters in its error (and its echo log);
    those are customers' names, comments and addresses, which would reach tracebacks in the log.
    """
    kwargs.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_dir(parsed.database)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    if "connect_timeout" not in parsed.query:
        connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS, **kwargs.pop("connect_args", {})}
        kwargs["connect_args"] = connect_args
    return create_engine(url, pool_pre_ping=True, **kwargs)


def missing_sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names when it does not exist yet (None for PostgreSQL, memory, or an existing file).

    Connecting would create it empty, wherever the command happens to run: commands other than `nps db upgrade`
    refuse instead, naming the file.
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return _missing_uri_file(database, parsed.query)
    path = Path(database).resolve()
    return None if path.exists() else path


def _missing_uri_file(uri: str, url_query: Mapping[str, Any]) -> Path | None:
    """The same for a `file:` URI (`?uri=true`), whose default mode `rwc` creates the file as well.

    The mode may sit in the URI or in the SQLAlchemy URL's own query (which the driver appends to the URI).
    """
    parts = urlsplit(uri)
    modes = parse_qs(parts.query).get("mode", []) + _as_list(url_query.get("mode"))
    path = unquote(parts.path)
    if not path or path == ":memory:" or "memory" in modes:
        return None
    resolved = Path(path).resolve()
    return None if resolved.exists() else resolved


def _as_list(value: str | tuple[str, ...] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _ensure_sqlite_dir(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@dataclass(frozen=True)
class Database:
    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def connect(cls, url: str, **kwargs: Any) -> Database:
        engine = create_db_engine(url, **kwargs)
        return cls(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        with self.sessions.begin() as session:
            yield session

    def is_reachable(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(engine: Engine) -> Config:
    from alembic.config import (
        Config,  # Alembic is imported by the commands that migrate, not by every command
    )

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(bind: Engine | Connection, *, timeout: timedelta | None = None) -> str | None:
    """The revision Alembic recorded (None for an empty database).

    Read with a plain query: Alembic's MigrationContext would log two INFO lines for every command that checks.
    With `timeout` (an Engine only), PostgreSQL gives up after it with a statement and lock timeout instead of
    waiting on whatever holds a lock on `alembic_version` (VACUUM FULL, ALTER TABLE, LOCK TABLE); SQLite's busy
    timeout bounds it already.
    """
    if isinstance(bind, Connection):
        return _recorded_revision(bind)
    with bind.connect() as connection:
        if timeout is not None and connection.dialect.name == "postgresql":
            milliseconds = int(timeout.total_seconds() * 1000)
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
        return _recorded_revision(connection)


def _recorded_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    return None if revision is None else str(revision)
