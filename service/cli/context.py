"""What every command shares: settings and container, built on first use so `--help` needs neither.

A command that opens the database fails with one line, never a traceback, when the database is not there:
a SQLite file that does not exist (connecting would create an empty one wherever the command runs, so only
`nps db upgrade` may), a server that cannot be reached, or a schema behind the code ("run `nps db upgrade`").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from service.container import Container
    from service.settings import Settings

UPGRADE = "run `nps db upgrade`"
SCHEMA_CHECK_TIMEOUT = timedelta(seconds=10)


@dataclass
class CliContext:
    env_file: str
    _settings: Settings | None = field(default=None, init=False)
    _container: Container | None = field(default=None, init=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from service.logs import configure_logging
            from service.settings import SettingsError, load_settings  # SQLAlchemy too: not for `--help`

            try:
                self._settings = load_settings(env_file=self.env_file)
            except SettingsError as error:
                raise click.ClickException(f"configuration error: {error}") from None
            configure_logging(
                self._settings.log_level,
                fmt=self._settings.log_format,
                libraries=self._settings.log_libraries,
            )
        return self._settings

    @property
    def container(self) -> Container:
        """The container over a database that exists and is migrated to the head of this version."""
        return self.open(create=False, migrated=True)

    def open(self, *, create: bool, migrated: bool) -> Container:
        """The container; `create` lets a missing SQLite file be created, `migrated` requires the current schema."""
        if self._container is not None:
            return self._container
        from service.container import build_container
        from storage.db import missing_sqlite_file

        url = self.settings.database_url
        missing = missing_sqlite_file(url)
        if missing is not None and not create:
            raise click.ClickException(f"no database at {missing}: {UPGRADE} first, or set DATABASE_URL")
        container = build_container(self.settings)
        try:
            _check_schema(container, migrated=migrated)
        except click.ClickException:
            container.close()
            raise
        self._container = container
        return container

    def close(self) -> None:
        if self._container is not None:
            self._container.close()


def _check_schema(container: Container, *, migrated: bool) -> None:
    """Reach the database now, so that an unreachable one is one line here rather than a traceback later.

    Bounded: a lock held on `alembic_version` (VACUUM FULL, an ALTER TABLE) is one line after SCHEMA_CHECK_TIMEOUT,
    not a command waiting for as long as the lock is held.
    """
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from service.doctor.database import first_line, shown_url
    from storage.bounded import timed_out
    from storage.db import current_revision
    from storage.migrations_state import head_revision

    url = container.settings.database_url
    try:
        revision = current_revision(container.db.engine, timeout=SCHEMA_CHECK_TIMEOUT)
    except OperationalError as error:
        if timed_out(error):
            raise click.ClickException(
                f"the database {shown_url(url)} did not answer within {SCHEMA_CHECK_TIMEOUT.seconds} s "
                "(a lock held on alembic_version, by a migration or maintenance): try again later"
            ) from None
        raise click.ClickException(
            f"cannot reach the database {shown_url(url)}: {first_line(error)}"
        ) from None
    except SQLAlchemyError as error:
        raise click.ClickException(
            f"cannot reach the database {shown_url(url)}: {first_line(error)}"
        ) from None
    if migrated and revision != head_revision():
        at = f"at migration {revision}" if revision else "empty"
        raise click.ClickException(f"the database {shown_url(url)} is {at}, not up to date: {UPGRADE}")


pass_context = click.make_pass_decorator(CliContext)
