"""The `nps` command line. Each command group lives in its own module; this one only assembles them.

Start-up is kept light: the command modules import the heavy parts (the web app, slack_bolt, twilio,
matplotlib...) inside the commands that use them, so `nps --help` and the simple commands start fast
(benchmarks/cli_startup.py measures it).
"""

from __future__ import annotations

from pathlib import Path

import click

from service.cli import (
    alerts,
    apikeys,
    campaigns,
    contacts,
    db,
    demo,
    doctor,
    events,
    exports,
    imports,
    insight,
    reports,
    serve,
    themes,
    worker,
)
from service.cli.context import CliContext

DEFAULT_ENV_FILE = ".env"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--env-file",
    default=DEFAULT_ENV_FILE,
    show_default=True,
    help="Settings file read before the environment (a missing .env is fine; a named file must exist).",
)
@click.version_option(package_name="nps-bot", prog_name="nps")
@click.pass_context
def cli(ctx: click.Context, env_file: str) -> None:
    """NPS surveys by SMS and email, with a Slack bot that closes the loop."""
    named = ctx.get_parameter_source("env_file") is not click.core.ParameterSource.DEFAULT
    if named and not Path(env_file).exists():
        raise click.ClickException(f"--env-file {env_file}: no such file")
    ctx.obj = CliContext(env_file=env_file)
    ctx.call_on_close(ctx.obj.close)


for module in (
    db,
    serve,
    worker,
    doctor,
    contacts,
    imports,
    campaigns,
    insight,
    reports,
    themes,
    exports,
    demo,
    apikeys,
    alerts,
    events,
):
    module.register(cli)


def main() -> None:
    cli(prog_name="nps")
