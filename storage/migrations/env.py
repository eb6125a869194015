"""Alembic environment: the engine comes from the caller (`nps db upgrade`, tests) or from DATABASE_URL."""

import os

from alembic import context

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


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
