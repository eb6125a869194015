"""The `nps` command line. Each command group lives in its own module; this one only assembles them."""

from __future__ import annotations

import click

from service.cli import alerts, apikeys, campaigns, contacts, db, events, serve, worker
from service.cli.context import CliContext


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--env-file", default=".env", show_default=True, help="Settings file read before the environment."
)
@click.version_option(package_name="nps-bot", prog_name="nps")
@click.pass_context
def cli(ctx: click.Context, env_file: str) -> None:
    """NPS surveys by SMS and email, with a Slack bot that closes the loop."""
    ctx.obj = CliContext(env_file=env_file)
    ctx.call_on_close(ctx.obj.close)


for module in (db, serve, worker, contacts, campaigns, apikeys, alerts, events):
    module.register(cli)


def main() -> None:
    cli(prog_name="nps")
