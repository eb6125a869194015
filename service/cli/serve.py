"""`nps serve`: the web app (and, from the campaign engine on, the one scheduler)."""

from __future__ import annotations

import logging

import click
import uvicorn

from service.cli.context import CliContext, pass_context
from service.container import integration_report
from service.web import create_app
from storage.db import current_revision
from storage.migrations_state import head_revision

log = logging.getLogger("nps.serve")


@click.command("serve")
@click.option("--host", default=None, help="Overrides HOST.")
@click.option("--port", type=int, default=None, help="Overrides PORT.")
@pass_context
def serve_command(ctx: CliContext, host: str | None, port: int | None) -> None:
    """Serve the HTTP app: webhooks, survey pages, the API and /healthz."""
    settings = ctx.settings
    container = ctx.container
    if current_revision(container.db.engine) != head_revision():
        raise click.ClickException("the database schema is not up to date: run `nps db upgrade` first")
    for line in integration_report(settings):
        log.info(line)
    uvicorn.run(
        create_app(container),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,  # keep our handler, with its masking filter
        access_log=False,
    )


def register(cli: click.Group) -> None:
    cli.add_command(serve_command)
