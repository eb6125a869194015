"""Alembic environment: the engine comes from the caller (`nps db upgrade`, tests) or from DATABASE_URL."""

from alembic import context

from storage.tables import Base


def _engine():
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return engine
    from service.settings import load_settings
    from storage.db import create_db_engine

    return create_db_engine(load_settings().database_url)


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
