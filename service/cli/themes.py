"""`nps themes`: what the comments talk about, and saved themes tracked over time."""

from __future__ import annotations

import click

from service.cli.context import CliContext, pass_context
from service.cli.insight import QUERY_HELP, echo_json, parse_query, print_table, query_text, query_title


class _ReportUnlessManaging(click.Group):
    """`nps themes [QUERY]` is the report; `nps themes add|list|show|remove` manage the saved themes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["report", *args]
        return super().parse_args(ctx, args)


@click.group("themes", cls=_ReportUnlessManaging)
def themes_group() -> None:
    """What the comments talk about (`nps themes [QUERY]`), and saved themes tracked over time."""


@themes_group.command("report", epilog=QUERY_HELP)
@click.argument("query", nargs=-1)
@click.option("--top", type=click.IntRange(1, 100), default=10, show_default=True, help="Terms per list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
@pass_context
def themes_command(ctx: CliContext, query: tuple[str, ...], top: int, as_json: bool) -> None:
    """What the comments talk about: the most frequent words and two-word phrases per category, and the terms
    detractors use significantly more (or less) than promoters. Every shipped language, Chinese included."""
    from campaigns.scores.errors import QueryError
    from campaigns.scores.themes import themes
    from storage.enums import Category

    parsed = parse_query(ctx, "score", query)
    try:
        with ctx.container.db.transaction() as session:
            report = themes(session=session, period=parsed.period, filters=parsed.filters)  # type: ignore[union-attr]
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    leaning = report.leaning(top)
    if as_json:
        echo_json(
            {
                "comments": {c.value: report.comments[c] for c in Category},
                "top": {
                    c.value: [{"term": t, "comments": n} for t, n in report.top(c, top)] for c in Category
                },
                "detractors_say_more": [
                    vars(item) | {"z": round(item.z, 2)} for item in leaning if item.z > 0
                ],
                "promoters_say_more": [
                    vars(item) | {"z": round(item.z, 2)} for item in leaning if item.z < 0
                ],
            }
        )
        return
    from rich.table import Table

    table = Table(title=query_title(parsed, "Themes"), title_justify="left")
    for category in Category:
        table.add_column(f"{category.value}s ({report.comments[category]} comments)")
    tops = [report.top(category, top) for category in Category]
    for row in range(max((len(t) for t in tops), default=0)):
        table.add_row(*(f"{t[row][0]} ({t[row][1]})" if row < len(t) else "" for t in tops))
    print_table(table)
    if leaning:
        said = Table(title="Said more by detractors (+) or promoters (-), |z| >= 1.96", title_justify="left")
        for column in ("term", "detractors", "promoters", "z"):
            said.add_column(column, justify="left" if column == "term" else "right")
        for item in leaning:
            said.add_row(item.term, str(item.detractors), str(item.promoters), f"{item.z:+.1f}")
        print_table(said)


@themes_group.command("add", epilog=QUERY_HELP)
@click.argument("name")
@click.argument("phrase")
@click.argument("query", nargs=-1)
@pass_context
def theme_add_command(ctx: CliContext, name: str, phrase: str, query: tuple[str, ...]) -> None:
    """Track PHRASE (a word or words, anywhere in a comment, any case) as NAME, within the responses QUERY's
    filters select (no period: `nps themes show` takes one)."""
    from campaigns.scores.errors import QueryError
    from campaigns.scores.saved_themes import add_theme

    parsed = parse_query(ctx, "score", query)
    if parsed.period.source:  # type: ignore[union-attr]
        raise click.ClickException(
            "a theme keeps filters, not a period: give the period to `nps themes show`"
        )
    text = query_text("score", query).removeprefix("score").strip()
    try:
        with ctx.container.db.transaction() as session:
            add_theme(name, phrase, text, session=session, now=ctx.container.clock.now())
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"theme {name.strip()}: comments mentioning {phrase.strip()!r}" + (f" within {text}" if text else "")
    )


@themes_group.command("list")
@pass_context
def theme_list_command(ctx: CliContext) -> None:
    """The saved themes."""
    from campaigns.scores.saved_themes import list_themes

    with ctx.container.db.transaction() as session:
        themes = [(t.name, t.phrase, t.query, t.created_at) for t in list_themes(session=session)]
    if not themes:
        click.echo("No saved themes: `nps themes add NAME PHRASE [QUERY]` adds one.", err=True)
    for name, phrase, text, created in themes:
        click.echo(f"{name}  {phrase!r}  {text or '(all responses)'}  since {created:%Y-%m-%d}")


@themes_group.command("remove")
@click.argument("name")
@pass_context
def theme_remove_command(ctx: CliContext, name: str) -> None:
    """Stop tracking a saved theme."""
    from campaigns.scores.saved_themes import remove_theme

    with ctx.container.db.transaction() as session:
        if not remove_theme(name, session=session):
            raise click.ClickException(f"there is no theme called `{name}`")
    click.echo(f"theme {name} removed")


@themes_group.command("show")
@click.argument("name")
@click.argument("period", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@pass_context
def theme_show_command(ctx: CliContext, name: str, period: tuple[str, ...], as_json: bool) -> None:
    """A saved theme per week (or `monthly`) over PERIOD (default: the last 12 weeks): comments, how many
    mention it, the mention rate and the NPS of those who do."""
    from zoneinfo import ZoneInfo

    from campaigns.scores.anonymity import HIDDEN_NOTE
    from campaigns.scores.errors import QueryError
    from campaigns.scores.saved_themes import get_theme, theme_trend

    with ctx.container.db.transaction() as session:
        theme = get_theme(name, session=session)
        if theme is None:
            raise click.ClickException(f"there is no theme called `{name}`: `nps themes list` shows them")
        phrase, saved = theme.phrase, theme.query
    parsed = parse_query(ctx, "trend", period, saved)
    try:
        with ctx.container.db.transaction() as session:
            points = theme_trend(
                phrase,
                session=session,
                period=parsed.period,  # type: ignore[union-attr]
                filters=parsed.filters,  # type: ignore[union-attr]
                granularity=parsed.granularity,  # type: ignore[union-attr]
                tz=ZoneInfo(ctx.settings.timezone),
            )
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        echo_json(
            [
                {
                    "start": p.start.isoformat(),
                    "comments": p.comments,
                    "mentions": p.mentions.responses,
                    "rate": None if p.rate is None else round(p.rate, 4),
                    "nps": p.nps,
                    **({"hidden": HIDDEN_NOTE} if p.hidden else {}),
                }
                for p in points
            ]
        )
        return
    from rich.table import Table

    table = Table(title=query_title(parsed, f"Theme {name}: {phrase!r}"), title_justify="left")
    for column in ("from", "comments", "mentions", "rate", "NPS of those"):
        table.add_column(column, justify="left" if column == "from" else "right")
    for p in points:
        rate = "-" if p.rate is None else f"{p.rate:.0%}"
        table.add_row(
            f"{p.start:%Y-%m-%d}",
            str(p.comments),
            HIDDEN_NOTE if p.hidden else str(p.mentions.responses),
            rate,
            "n/a" if p.nps is None else f"{p.nps:+d}",
        )
    print_table(table)


def register(cli: click.Group) -> None:
    cli.add_command(themes_group)
