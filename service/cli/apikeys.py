"""`nps apikeys ...`: keys for the HTTP API."""

from __future__ import annotations

from datetime import datetime

import click

from service.cli.context import CliContext, pass_context


@click.group("apikeys")
def apikeys_group() -> None:
    """HTTP API keys."""


@apikeys_group.command("create")
@click.argument("name")
@pass_context
def create_command(ctx: CliContext, name: str) -> None:
    """Create a key called NAME and print it once; only its hash is stored."""
    from service.apikeys import create_api_key
    from storage.audit import record_audit
    from storage.enums import AuditAction, AuditEntity

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


@apikeys_group.command("list")
@pass_context
def list_command(ctx: CliContext) -> None:
    """Keys by id and prefix, with name, creation, last use (to the minute) and revocation; never the key."""
    from service.apikeys import list_api_keys

    with ctx.container.db.transaction() as session:
        rows = [
            (r.id, r.prefix, r.name, r.created_at, r.last_used_at, r.revoked_at)
            for r in list_api_keys(session=session)
        ]
    width = max([len("NAME"), *(len(name) for _, _, name, *_ in rows)])
    click.echo(
        f"{'ID':>4}  {'PREFIX':<10}  {'NAME':<{width}}  {'CREATED (UTC)':<16}  {'LAST USED':<16}  REVOKED"
    )
    for key_id, prefix, name, created, last_used, revoked in rows:
        click.echo(
            f"{key_id:>4}  {prefix:<10}  {name:<{width}}  {_when(created):<16}  "
            f"{_when(last_used, 'never'):<16}  {_when(revoked, '-')}"
        )
    static = len(ctx.settings.api_keys)
    if static:
        click.echo(f"and {static} from NPS_API_KEYS (revoked by removing them there)", err=True)


def _when(at: datetime | None, missing: str = "") -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at is not None else missing


@apikeys_group.command("revoke")
@click.argument("key")
@pass_context
def revoke_command(ctx: CliContext, key: str) -> None:
    """Revoke the key with the prefix or id KEY (as `nps apikeys list` shows them); it gets 401 from now on."""
    from service.apikeys import ApiKeyNotFound, find_api_key, revoke_api_key
    from storage.audit import record_audit
    from storage.enums import AuditAction, AuditEntity

    now = ctx.container.clock.now()
    with ctx.container.db.transaction() as session:
        try:
            row = find_api_key(key, session=session)
        except ApiKeyNotFound as error:
            raise click.ClickException(str(error)) from None
        revoked = revoke_api_key(row, session=session, now=now)
        if revoked:
            record_audit(
                session=session,
                actor="cli",
                action=AuditAction.API_KEY_REVOKED,
                entity_type=AuditEntity.API_KEY,
                entity_id=row.id,
            )
        shown = f"{row.prefix}… ({row.name})"
        revoked_at = row.revoked_at
    click.echo(f"{shown}: revoked" if revoked else f"{shown} was already revoked on {_when(revoked_at)} UTC")


def register(cli: click.Group) -> None:
    cli.add_command(apikeys_group)
