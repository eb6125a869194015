"""Engine and session factories. Nothing is created at import time; the composition root calls these."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import deque
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
        file = _sqlite_file(parsed.database)
        if file is not None:
            _queue_writers(engine, writer_queue(file))
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


# --- SQLite: one queue of writers per database file and process ----------------------------------------------
#
# SQLite has one write lock per database file. A connection that finds it taken does not queue for it: its busy
# handler sleeps and tries again (1, 2, 5 ... then 100 ms apart) until the busy timeout. Whoever tries while the
# lock is free wins, so under a steady stream of short write transactions (replies arriving while a campaign
# dispatches) most writers wait a few milliseconds and a few lose every try for the whole 5 s and fail with
# "database is locked": measured with 12 threads writing 20 ms transactions through this engine, the median wait
# was 0 ms and 34 of 1,239 transactions failed after 5.0 s.
#
# So the writers of one process (the web requests and the scheduler of `nps serve`) queue for the lock here, in
# arrival order, before SQLite sees them: a transaction takes its place when pysqlite is about to open it (its
# first INSERT, UPDATE, DELETE or REPLACE; reads before it run outside a transaction, as pysqlite has always run
# them) and gives it up at its commit or rollback. A writer waits at most its connection's busy timeout in the
# queue, then fails as SQLite would have ("database is locked"); SQLite's own busy handler still covers other
# processes (the CLI, a second web process), which do not see this queue.
#
# Read-only work (health checks, /metrics, the score queries) never enters the queue: in WAL mode readers do not
# take the write lock, and pysqlite opens no transaction for them.

# pysqlite (Python 3.11) opens a transaction before a statement that starts with one of these words, after any
# whitespace and comments, when none is open: exactly then a transaction starts wanting the write lock.
_OPENS_WRITE = re.compile(
    r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.I | re.S
)
_HOLDS_QUEUE = "nps_writer_queue_held"  # key in the pooled connection's info: this connection is at the front


class WriterQueue:
    """A first-come first-served lock: whoever waits longest gets it next, however often others come back."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Event] = deque()

    def acquire(self, timeout: float) -> bool:
        """True once it is ours; False after `timeout` seconds in the queue (then nothing is held)."""
        with self._mutex:
            if not self._held and not self._waiting:
                self._held = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over between the timeout and this line: ours after all
                return True
            self._waiting.remove(turn)
            return False

    def release(self) -> None:
        """Hand the lock to the longest waiter (it stays held), or free it."""
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._held = False


_QUEUES: dict[Path, WriterQueue] = {}
_QUEUES_LOCK = threading.Lock()


def writer_queue(file: Path) -> WriterQueue:
    """The queue of this process's writers to one SQLite file, shared by every engine on it."""
    with _QUEUES_LOCK:
        return _QUEUES.setdefault(file, WriterQueue())


def _sqlite_file(database: str | None) -> Path | None:
    """The file a SQLite URL's database names (None: in memory, or a `file:` URI left to the driver)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


def _queue_writers(engine: Engine, queue: WriterQueue) -> None:
    """Every transaction of `engine` that starts writing waits for its turn in `queue` first."""

    def take_turn(cursor: Any, statement: str, context: Any) -> None:
        info = context.root_connection.connection.info
        if info.get(_HOLDS_QUEUE) or cursor.connection.in_transaction or not _OPENS_WRITE.match(statement):
            return
        busy_ms = cursor.connection.execute("PRAGMA busy_timeout").fetchone()[0]
        if not queue.acquire(timeout=busy_ms / 1000):
            raise sqlite3.OperationalError("database is locked")  # what SQLite says after its busy timeout
        info[_HOLDS_QUEUE] = True

    def give_turn(info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS_QUEUE, False):
            queue.release()

    def end_of_transaction(connection: Connection) -> None:
        if not connection.invalidated:  # an invalidated one gave its turn back at the pool's "invalidate"
            give_turn(connection.connection.info)

    def take_turn_with_params(cursor: Any, statement: str, _params: Any, context: Any) -> None:
        take_turn(cursor, statement, context)

    # The driver's own calls, after every before_cursor_execute listener: the turn is taken at the last moment
    # (a test's hook that holds a statement before it runs holds no turn meanwhile).
    event.listen(engine, "do_execute", take_turn_with_params)
    event.listen(engine, "do_executemany", take_turn_with_params)
    event.listen(engine, "do_execute_no_params", take_turn)
    # At the end of the transaction (just before the driver's COMMIT or ROLLBACK: the next writer's busy handler
    # covers the instant between), and when a connection goes back to the pool or away without either.
    event.listen(engine, "commit", end_of_transaction)
    event.listen(engine, "rollback", end_of_transaction)
    for end in ("checkin", "invalidate", "close", "detach"):
        event.listen(engine.pool, end, lambda _dbapi, record, *_: give_turn(record.info))


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
