"""`nps doctor`: check the configuration and every integration for real; exit 1 if anything fails."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from service.cli.context import CliContext, pass_context


@click.command("doctor")
@pass_context
def doctor_command(ctx: CliContext) -> None:
    """Check settings, database, Slack, Twilio and SMTP for real: one line each (ok, warning, FAIL + what to do).

    Every network check gives up after a few seconds. Exits 1 if any check fails.
    """
    from service.doctor.findings import fail, failed, ok
    from service.doctor.run import run_checks
    from service.settings import SettingsError, load_settings

    source = ctx.env_file if Path(ctx.env_file).is_file() else "the environment"
    try:
        settings = load_settings(env_file=ctx.env_file)
    except SettingsError as error:
        click.echo(fail("settings", f"{error} (read from {source})").line())
        sys.exit(1)
    findings = [ok("settings", f"read from {source}; no secret is a placeholder"), *run_checks(settings)]
    for finding in findings:
        click.echo(finding.line())
    if failed(findings):
        sys.exit(1)


def register(cli: click.Group) -> None:
    cli.add_command(doctor_command)
