"""`nps import delighted`: history from Delighted's CSV exports (responses, unsubscribed and bounced people)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

import click

from service.cli.context import CliContext, pass_context

if TYPE_CHECKING:  # imported where used: `nps --help` must not load SQLAlchemy
    from campaigns.imports.delighted import OptOutReport, PeopleList
    from storage.db import Database

T = TypeVar("T")


@click.group("import")
def import_group() -> None:
    """History from other tools."""


@import_group.command("delighted")
@click.argument("responses", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--unsubscribed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Delighted's unsubscribed people (CSV with an Email or Phone column): opted out here.",
)
@click.option(
    "--bounced",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Delighted's bounced people: their addresses opted out here too.",
)
@pass_context
def delighted_command(
    ctx: CliContext, responses: Path, unsubscribed: Path | None, bounced: Path | None
) -> None:
    """Import a Delighted responses export (RESPONSES.csv): scores, comments, times, person properties, tags and
    notes, each person a contact. Re-importing the same file adds nothing twice.

    Rows that cannot be read are listed with their line number; the command exits 1 if there were any."""
    from campaigns.imports.delighted import import_delighted

    container = ctx.container
    now = container.clock.now()
    report = _read(responses, lambda source: import_delighted(container.db, source, now=now))
    problems = _show_problems(responses, report.problems)
    click.echo(
        f"{report.imported} responses imported, {report.already_imported} already there, "
        f"{report.other_surveys} not NPS (skipped), {len(report.problems)} not readable; "
        f"{report.contacts_created} contacts created"
    )
    lists: tuple[tuple[Path | None, PeopleList], ...] = ((unsubscribed, "unsubscribed"), (bounced, "bounced"))
    for path, which in lists:
        if path is not None:
            outs = _read(path, functools.partial(_opt_outs, container.db, which=which, now=now))
            problems += _show_problems(path, outs.problems)
            click.echo(f"{which}: {outs.opted_out} addresses opted out, {outs.already} already opted out")
    if problems:
        sys.exit(1)


def _opt_outs(db: Database, source: IO[bytes], *, which: PeopleList, now: datetime) -> OptOutReport:
    from campaigns.imports.delighted import import_opt_outs

    return import_opt_outs(db, source, which, now=now)


def _read(path: Path, read: Callable[[IO[bytes]], T]) -> T:
    """`read` over the file; a file that cannot be read at all is one line naming it."""
    from campaigns.imports.delighted import DelightedFileError

    try:
        with path.open("rb") as source:
            return read(source)
    except DelightedFileError as error:
        raise click.ClickException(f"{path}: {error}") from None


def _show_problems(path: Path, problems: list[tuple[int, str]]) -> int:
    for line, reason in problems:
        click.echo(f"{path}:{line}: {reason}", err=True)
    return len(problems)


def register(cli: click.Group) -> None:
    cli.add_command(import_group)
