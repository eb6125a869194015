"""`nps export responses`: the responses out to a CSV or JSON Lines file, with the `/nps` filter grammar."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from service.cli.context import CliContext, pass_context
from service.cli.insight import QUERY_HELP, parse_query

if TYPE_CHECKING:
    from bot.query.grammar import Query
    from campaigns.scores.periods import Period

EXPORT_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


@click.group("export")
def export_group() -> None:
    """Data out to files, for spreadsheets and scripts."""


@export_group.command("responses", epilog=QUERY_HELP + " Without a period, all time.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("query", nargs=-1)
@pass_context
def export_responses_command(ctx: CliContext, file: Path, query: tuple[str, ...]) -> None:
    """Every response the QUERY selects, oldest first, to FILE.csv (a column per property, cells a spreadsheet
    would run as formulas neutralised) or FILE.jsonl (values as stored). Streamed: memory stays flat.

    The file appears complete or not at all: it is written next to FILE and renamed at the end."""

    from campaigns.scores.errors import QueryError

    fmt = EXPORT_FORMATS.get(file.suffix.casefold())
    if fmt is None:
        raise click.ClickException(f"{file}: the file must end in .csv or .jsonl")
    if not file.parent.is_dir():
        raise click.ClickException(f"{file.parent}: no such directory")
    parsed = parse_query(ctx, "score", query)
    period = parsed.period if parsed.period.source else None  # type: ignore[union-attr]
    try:
        count = _export_whole(ctx, file, fmt, parsed, period)
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"{file}: {error.strerror or error}") from None
    click.echo(f"{count} responses written to {file}")
    _say_left_out(ctx, parsed, period)


def _say_left_out(ctx: CliContext, parsed: Query, period: Period | None) -> None:
    from campaigns.scores.export import left_out

    with ctx.container.db.transaction() as session:
        anonymous = left_out(session, parsed.filters, period)  # type: ignore[union-attr]
    if anonymous:
        click.echo(
            f"{anonymous} answers of anonymous (eNPS) campaigns left out: they are never exported row by row; "
            "`nps score`, `nps trend` and `nps compare` show them in groups of 5 or more"
        )


def _export_whole(ctx: CliContext, file: Path, fmt: str, parsed: Query, period: Period | None) -> int:
    """Write to a temporary file created exclusively next to FILE (never an existing file or symlink, such as
    another export's), renamed onto FILE once complete and removed on any failure, Ctrl-C included."""
    import os
    import tempfile

    from campaigns.scores.export import export_responses

    handle, name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".partial", dir=file.parent)
    partial = Path(name)
    try:
        with (
            os.fdopen(handle, "w", encoding="utf-8", newline="") as out,
            ctx.container.db.transaction() as session,
        ):
            count = export_responses(
                out,
                fmt,  # type: ignore[arg-type]
                session=session,
                filters=parsed.filters,  # type: ignore[union-attr]
                period=period,
            )
        os.replace(partial, file)
    finally:
        partial.unlink(missing_ok=True)
    return count


def register(cli: click.Group) -> None:
    cli.add_command(export_group)
