"""`nps contacts ...`: import and inspect contacts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from service.cli.context import CliContext, pass_context

if TYPE_CHECKING:
    from campaigns.contacts.csv_file import RowProblem


class _BadOption(click.ClickException):
    """A wrong option value, said in one line (a usage error would print the usage first); exit code 2."""

    exit_code = 2


@click.group("contacts")
def contacts_group() -> None:
    """Contacts: the people surveyed."""


@contacts_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--default-region", metavar="CC", help="Country for national phone numbers, e.g. DE or US.")
@click.option("--batch-size", type=click.IntRange(1, 50_000), default=1000, show_default=True)
@pass_context
def import_command(ctx: CliContext, file: Path, default_region: str | None, batch_size: int) -> None:
    """Create or update contacts from a CSV file (UTF-8, comma or semicolon).

    Columns external_id, name, phone, email, locale, timezone; every other column becomes a property.
    Rejected rows are listed with their line number; the command exits 1 if there were any.
    """
    from campaigns.contacts.csv_file import CsvFileError
    from campaigns.contacts.importer import import_contacts

    _refuse_unknown_region(default_region)
    db = ctx.container.db

    def report_problem(problem: RowProblem) -> None:
        click.echo(f"{file}:{problem.line}: {problem.reason}", err=True)

    with file.open("rb") as source, _progress_bar(file) as on_progress:
        try:
            report = import_contacts(
                source,
                db=db,
                default_region=default_region,
                batch_size=batch_size,
                on_progress=on_progress,
                on_problem=report_problem,
            )
        except CsvFileError as error:
            raise click.ClickException(f"{file}: {error}") from None
    summary = f"imported {report.imported} contacts ({report.created} new, {report.updated} updated)"
    if report.rejected:
        summary += f"; {report.rejected} rows rejected"
    click.echo(summary)
    if not report.ok:
        sys.exit(1)


def _refuse_unknown_region(value: str | None) -> None:
    """One line before the file is read, instead of a traceback from the first row's validation."""
    import phonenumbers

    if value is not None and value.strip().upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise _BadOption(
            f"--default-region '{value}' is not a country code that phone numbers use (e.g. DE, US, GB)"
        )


@contextmanager
def _progress_bar(file: Path) -> Iterator[Callable[[int], None] | None]:
    """A progress bar over the file's lines on a terminal (problems print above it); nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("import", total=_count_lines(file))
        yield lambda line: progress.update(task, completed=line)


def _count_lines(file: Path) -> int:
    """Lines in the file, read in chunks (for the progress bar; the file may be larger than memory)."""
    lines, last = 0, b"\n"
    with file.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (0 if last == b"\n" else 1)


@contacts_group.command("why")
@click.argument("external_id")
@pass_context
def why_command(ctx: CliContext, external_id: str) -> None:
    """Explain when a contact was last surveyed, when next, and why campaigns skipped them."""
    from campaigns.contacts.consents import ledger_lines
    from campaigns.contacts.store import get_contact_by_external_id
    from campaigns.planning.explain import explain

    container = ctx.container
    with container.db.transaction() as session:
        contact = get_contact_by_external_id(external_id, session=session)
        if contact is None:
            raise click.ClickException(f"no contact with external_id {external_id!r}")
        lines = explain(contact, now=container.clock.now(), rules=container.planning_rules, session=session)
        lines += ledger_lines(contact, session=session)
    for line in lines:
        click.echo(line)


@contacts_group.command("export")
@click.argument("external_id")
@pass_context
def export_command(ctx: CliContext, external_id: str) -> None:
    """Print everything stored about a contact as JSON: contact, consents and their ledger, responses, messages."""
    from campaigns.contacts.export import person_data
    from campaigns.contacts.store import get_contact_by_external_id

    with ctx.container.db.transaction() as session:
        contact = get_contact_by_external_id(external_id, session=session)
        if contact is None:
            raise click.ClickException(f"no contact with external_id {external_id!r}")
        data = person_data(contact, session=session)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def register(cli: click.Group) -> None:
    cli.add_command(contacts_group)
