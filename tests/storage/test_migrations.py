from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage.db import Database, alembic_config, current_revision, upgrade
from storage.migrations_state import head_revision
from storage.tables import Base


def test_the_database_is_at_the_newest_revision(db: Database) -> None:
    assert current_revision(db.engine) == head_revision()


def test_upgrade_again_changes_nothing(db: Database) -> None:
    upgrade(db.engine)
    assert current_revision(db.engine) == head_revision()


def test_the_models_match_the_migrations(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_and_back_up(sqlite_db: Database) -> None:
    config = alembic_config(sqlite_db.engine)
    command.downgrade(config, "base")
    assert current_revision(sqlite_db.engine) is None
    upgrade(sqlite_db.engine)
    assert current_revision(sqlite_db.engine) == head_revision()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
