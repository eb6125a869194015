"""Alembic environment: the engine comes from the caller (`nps db upgrade`, tests) or from DATABASE_URL.

On SQLite, a migration that changes a column rebuilds its table (batch mode: a new copy, DROP, rename). With
foreign keys enforced, that DROP deletes every row first, which fires ON DELETE SET NULL / CASCADE on the rows that
point at it: every message and answer would lose its survey. So migrations run with enforcement off, and
`PRAGMA foreign_key_check` afterwards refuses to commit a schema whose references no longer hold.

That refusal must undo the whole upgrade, so on SQLite it runs as one real transaction: Alembic takes SQLite for
a database without transactional DDL and commits after every revision, and pysqlite opens a transaction only
before INSERT, UPDATE, DELETE or REPLACE (a CREATE or ALTER before them ran outside any). So Alembic is told the
DDL is transactional (SQLite's is) and the transaction is begun here, IMMEDIATE: the write lock is taken up front,
waited for through the busy timeout like any writer's.
"""

import os

from alembic import context
from sqlalchemy import Connection

from storage.tables import Base


def _engine():
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return engine
    # The `alembic` command line of a developer: the same variable and `.env` file as `nps`.
    from dotenv import load_dotenv

    from storage.db import DEFAULT_DATABASE_URL, create_db_engine

    load_dotenv()
    return create_db_engine(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left {len(broken)} rows with broken references; rolled back")
    connection.commit()


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            _run(connection)
            return
        # PRAGMA foreign_keys is ignored inside a transaction: set it before the migration's, restore it after.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        try:
            _run(connection)
        finally:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


run_migrations_online()
