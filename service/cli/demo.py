"""`nps demo`: a throwaway SQLite database with a realistic company, then score, trend, comparison, themes,
drivers and loop health on it, and the trend chart as a PNG. Nothing else is touched: not your database, not
Slack, not Twilio."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from service.cli.context import CliContext, pass_context

SECTIONS = (
    ("score", ("last", "90d")),
    ("trend", ("monthly", "last", "12", "months")),
    ("compare", ("plan", "last", "12", "months")),
    ("drivers", ("last", "12", "months", "--top", "6")),
    ("themes", ("last", "12", "months", "--top", "6")),
    ("loop", ("last", "12", "months")),
)
CHARTS = {"trend": "trend.png", "compare": "compare-plan.png", "drivers": "drivers.png"}  # --png of these


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to put demo.db and the charts (default: a new temporary directory).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Another seed, another company.")
@pass_context
def demo_command(ctx: CliContext, directory: Path | None, seed: int) -> None:
    """Try the insight commands on a synthetic company: a few thousand contacts, a year of answers in the shipped
    languages with planted themes and drivers, follow-ups in every state."""
    from campaigns.clock import SystemClock
    from service.cli import cli
    from service.demo.company import build_company
    from service.settings import parse_settings
    from storage.db import Database, upgrade

    target = directory or Path(tempfile.mkdtemp(prefix="nps-demo-"))
    target.mkdir(parents=True, exist_ok=True)
    database = target / "demo.db"
    database.unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    db = Database.connect(url)
    try:
        upgrade(db.engine)
        count = build_company(db, now=SystemClock().now(), seed=seed)
    finally:
        db.dispose()
    click.echo(f"Demo company in {database}: {count} responses over the last year.\n")
    demo = CliContext(env_file=os.devnull)
    demo._settings = parse_settings({"DATABASE_URL": url})
    charts = {name: target / file for name, file in CHARTS.items()}
    try:
        for name, args in SECTIONS:
            extra = ("--png", str(charts[name])) if name in charts else ()
            click.echo(f"$ nps {name} {' '.join(args + extra)}")
            command = cli.commands[name]
            with command.make_context(name, [*args, *extra], obj=demo) as sub:
                command.invoke(sub)
            click.echo()
    finally:
        demo.close()
    click.echo("Charts: " + ", ".join(str(path) for path in charts.values()))
    click.echo(f"Try more: DATABASE_URL={url} nps score last 30d plan=pro")


def register(cli: click.Group) -> None:
    cli.add_command(demo_command)
