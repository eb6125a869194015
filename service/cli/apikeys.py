"""`nps apikeys ...`: keys for the HTTP API."""

from __future__ import annotations

import click

from service.apikeys import create_api_key
from service.cli.context import CliContext, pass_context
from storage.audit import record_audit
from storage.enums import AuditAction, AuditEntity


@click.group("apikeys")
def apikeys_group() -> None:
    """HTTP API keys."""


@apikeys_group.command("create")
@click.argument("name")
@pass_context
def create_command(ctx: CliContext, name: str) -> None:
    """Create a key called NAME and print it once; only its hash is stored."""
    with ctx.container.db.transaction() as session:
        row, key = create_api_key(name, session=session)
        record_audit(
            session=session,
            actor="cli",
            action=AuditAction.API_KEY_CREATED,
            entity_type=AuditEntity.API_KEY,
            entity_id=row.id,
        )
    click.echo(key)
    click.echo(f"Stored as {row.prefix}… ({name}). Keep it now: it cannot be shown again.", err=True)


def register(cli: click.Group) -> None:
    cli.add_command(apikeys_group)
