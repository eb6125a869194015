"""The database pool of a process is as large as the work it runs at once: every send in flight takes a
connection for its last look (campaigns.dispatch.presend), so a pool smaller than NPS_SEND_CONCURRENCY makes
sends wait for one and, beyond the pool, open and close a PostgreSQL connection (a server process) each time."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, text

from service.container import build_container
from service.settings import SettingsError, load_settings
from storage.db import Database


def _settings(url: str, **extra: str):  # type: ignore[no-untyped-def]
    return load_settings({"DATABASE_URL": url, **extra}, env_file=None)


@pytest.mark.postgres
def test_as_many_sends_as_the_concurrency_hold_a_connection_at_once(empty_postgres_db: Database) -> None:
    url = empty_postgres_db.engine.url.render_as_string(hide_password=False)
    container = build_container(_settings(url, NPS_SEND_CONCURRENCY="32"))
    connects = []
    event.listen(container.db.engine, "connect", lambda *_: connects.append(1))
    all_in = threading.Barrier(32, timeout=10)
    failures: list[BaseException] = []

    def last_look() -> None:
        try:
            with container.db.transaction() as session:
                session.execute(text("SELECT 1"))
                all_in.wait()  # every send in flight is inside its look at the same moment
        except BaseException as error:  # a thread that waited for a connection breaks the barrier
            failures.append(error)
            all_in.abort()

    threads = [threading.Thread(target=last_look) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    container.close()
    assert failures == []
    assert len(connects) == 32


def test_the_pool_follows_the_send_concurrency_unless_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'nps.db'}"
    assert _settings(url).db_pool_size == 16 + 8
    assert _settings(url, NPS_SEND_CONCURRENCY="64").db_pool_size == 64 + 8
    assert _settings(url, NPS_DB_POOL_SIZE="12").db_pool_size == 12
    with pytest.raises(SettingsError, match="NPS_DB_POOL_SIZE must be between 1 and 1000"):
        _settings(url, NPS_DB_POOL_SIZE="0")
    # SQLite has one writer: a larger pool would only move the queue to its 5 s busy timeout (503s under load).
    container = build_container(_settings(url, NPS_DB_POOL_SIZE="12", NPS_DB_MAX_OVERFLOW="3"))
    assert (container.db.engine.pool.size(), container.db.engine.pool._max_overflow) == (5, 10)  # type: ignore[attr-defined]
    container.close()


@pytest.mark.postgres
def test_postgresql_gets_the_configured_pool(empty_postgres_db: Database) -> None:
    url = empty_postgres_db.engine.url.render_as_string(hide_password=False)
    container = build_container(_settings(url, NPS_DB_POOL_SIZE="12", NPS_DB_MAX_OVERFLOW="3"))
    assert (container.db.engine.pool.size(), container.db.engine.pool._max_overflow) == (12, 3)  # type: ignore[attr-defined]
    container.close()
