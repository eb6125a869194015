"""`nps contacts ...`: import and inspect contacts."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import phonenumbers
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from campaigns.contacts.csv_file import CsvFileError
from campaigns.contacts.importer import ImportReport, import_contacts
from campaigns.contacts.store import get_contact_by_external_id
from campaigns.planning.explain import explain
from service.cli.context import CliContext, pass_context
from storage.db import Database


@click.group("contacts")
def contacts_group() -> None:
    """Contacts: the people surveyed."""


@contacts_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--default-region",
    metavar="CC",
    callback=lambda _ctx, _param, value: _known_region(value),
    help="Country for national phone numbers, e.g. DE or US.",
)
@click.option("--batch-size", type=click.IntRange(1, 50_000), default=1000, show_default=True)
@pass_context
def import_command(ctx: CliContext, file: Path, default_region: str | None, batch_size: int) -> None:
    """Create or update contacts from a CSV file (UTF-8, comma or semicolon).

    Columns external_id, name, phone, email, locale, timezone; every other column becomes a property.
    Rejected rows are listed with their line number; the command exits 1 if there were any.
    """
    data = file.read_bytes()
    db = ctx.container.db
    try:
        if sys.stderr.isatty():
            report = _import_with_progress(data, db=db, default_region=default_region, batch_size=batch_size)
        else:
            report = import_contacts(data, db=db, default_region=default_region, batch_size=batch_size)
    except CsvFileError as error:
        raise click.ClickException(f"{file}: {error}") from None
    _print_report(file, report)
    if not report.ok:
        sys.exit(1)


def _known_region(value: str | None) -> str | None:
    """A usage error before the file is read, instead of a traceback from the first row's validation."""
    if value is not None and value.strip().upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise click.BadParameter(f"'{value}' is not a country code that phone numbers use (e.g. DE, US, GB)")
    return value


def _import_with_progress(
    data: bytes, *, db: Database, default_region: str | None, batch_size: int
) -> ImportReport:
    total_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("import", total=total_lines)
        return import_contacts(
            data,
            db=db,
            default_region=default_region,
            batch_size=batch_size,
            on_progress=lambda line: progress.update(task, completed=line),
        )


def _print_report(file: Path, report: ImportReport) -> None:
    for problem in report.problems:
        click.echo(f"{file}:{problem.line}: {problem.reason}", err=True)
    summary = f"imported {report.imported} contacts ({report.created} new, {report.updated} updated)"
    if report.problems:
        summary += f"; {len(report.problems)} rows rejected"
    click.echo(summary)


@contacts_group.command("why")
@click.argument("external_id")
@pass_context
def why_command(ctx: CliContext, external_id: str) -> None:
    """Explain when a contact was last surveyed, when next, and why campaigns skipped them."""
    container = ctx.container
    with container.db.transaction() as session:
        contact = get_contact_by_external_id(external_id, session=session)
        if contact is None:
            raise click.ClickException(f"no contact with external_id {external_id!r}")
        lines = explain(contact, now=container.clock.now(), rules=container.planning_rules, session=session)
    for line in lines:
        click.echo(line)


def register(cli: click.Group) -> None:
    cli.add_command(contacts_group)
