"""`nps db ...`: schema migrations."""

from __future__ import annotations

import click

from service.cli.context import CliContext, pass_context


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@pass_context
def upgrade_command(ctx: CliContext) -> None:
    """Apply every pending migration (safe to run again); creates a SQLite database that does not exist yet."""
    from storage.db import current_revision, upgrade

    engine = ctx.open(create=True, migrated=False).db.engine
    upgrade(engine)
    click.echo(f"database at revision {current_revision(engine)}")


@db_group.command("current")
@pass_context
def current_command(ctx: CliContext) -> None:
    """Show the schema revision the database is at."""
    from storage.db import current_revision

    click.echo(
        current_revision(ctx.open(create=False, migrated=False).db.engine) or "empty (run `nps db upgrade`)"
    )


def register(cli: click.Group) -> None:
    cli.add_command(db_group)
