"""`nps funnel` and `nps loop`: how far invitations got, and whether detractors hear back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from service.cli.context import CliContext, pass_context
from service.cli.insight import (
    QUERY_HELP,
    echo_json,
    parse_query,
    print_table,
    query_title,
    write_chart,
)


@click.command("funnel", epilog=QUERY_HELP)
@click.argument("query", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@pass_context
def funnel_command(ctx: CliContext, query: tuple[str, ...], as_json: bool) -> None:
    """Per campaign and channel, the invitations due in the period and how far they got: sent, delivered,
    responded, commented, opted out afterwards."""
    from campaigns.scores.errors import QueryError
    from campaigns.scores.funnel import funnel

    parsed = parse_query(ctx, "score", query)
    try:
        with ctx.container.db.transaction() as session:
            rows = funnel(session=session, period=parsed.period, filters=parsed.filters)  # type: ignore[union-attr]
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    steps = ("planned", "sent", "delivered", "responded", "commented", "opted_out")
    if as_json:
        echo_json(
            [
                {"campaign": r.campaign, "channel": r.channel.value if r.channel else None}
                | {step: getattr(r, step) for step in steps}
                for r in rows
            ]
        )
        return
    from rich.table import Table

    table = Table(title=query_title(parsed, "Response funnel"), title_justify="left")
    for column in ("campaign", "channel", *(step.replace("_", " ") for step in steps)):
        table.add_column(column, justify="left" if column in ("campaign", "channel") else "right")
    for r in rows:
        cells = [str(r.planned), str(r.sent)]
        for step in steps[2:]:
            share = r.share(getattr(r, step))
            cells.append(f"{getattr(r, step)}" + ("" if share is None else f" ({share:.0%})"))
        table.add_row(r.campaign, r.channel.value if r.channel else "-", *cells)
    print_table(table)


def _hours(span: Any) -> float | None:
    return None if span is None else round(span.total_seconds() / 3600, 1)


def _loop_json(health: Any) -> dict[str, Any]:
    return {
        "group": health.group,
        "followed_up": health.followed_up,
        "touched": health.touched,
        "touched_in_time": health.touched_in_time,
        "resolved": health.resolved,
        "median_first_touch_hours": _hours(health.median_first_touch),
        "median_resolution_hours": _hours(health.median_resolution),
    }


def _recovery_json(recovery: Any) -> dict[str, Any]:
    share = recovery.share
    return {
        "group": recovery.group,
        "resolved": recovery.resolved,
        "re_survey_planned": recovery.planned,
        "re_surveyed": recovery.re_surveyed,
        "answered": recovery.answered,
        "rose": recovery.rose,
        "share": None if share is None else round(share, 3),
    }


def _print_recovery(report: Any, title: str) -> None:
    """The second table of `nps loop`: of the detractors resolved in the period, who answered again higher."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("", "resolved", "re-survey planned", "re-surveyed", "answered again", "score rose"):
        table.add_column(column, justify="left" if not column else "right")
    for recovery in [report.overall, *report.by_campaign]:
        share = recovery.share
        rose = f"{recovery.rose} of {recovery.answered}" + ("" if share is None else f" ({share:.0%})")
        table.add_row(
            "all" if recovery.group == "all" else f"campaign {recovery.group}",
            str(recovery.resolved),
            str(recovery.planned),
            str(recovery.re_surveyed),
            str(recovery.answered),
            rose,
        )
    print_table(table)


@click.command("loop", epilog=QUERY_HELP)
@click.argument("query", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@pass_context
def loop_command(ctx: CliContext, query: tuple[str, ...], as_json: bool) -> None:
    """Whether detractors hear back: follow-ups touched by their deadline, time to first touch, time to resolve
    and share resolved, overall, per assignee and per campaign, for the responses of the period.

    Then recovery, for the detractors whose follow-up was resolved in the period: re-surveys planned and sent
    (a campaign's `recovery`), how many answered the same campaign again afterwards, and how many of those
    gave a higher score in that next answer."""
    from campaigns.scores.errors import QueryError
    from campaigns.scores.loop import loop_health
    from campaigns.scores.recovery import recovery_share

    parsed = parse_query(ctx, "score", query)
    try:
        with ctx.container.db.transaction() as session:
            report = loop_health(session=session, period=parsed.period, filters=parsed.filters)  # type: ignore[union-attr]
            recovery = recovery_share(session=session, period=parsed.period, filters=parsed.filters)  # type: ignore[union-attr]
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        echo_json(
            {
                "overall": _loop_json(report.overall),
                "by_assignee": [_loop_json(h) for h in report.by_assignee],
                "by_campaign": [_loop_json(h) for h in report.by_campaign],
                "recovery": {
                    "overall": _recovery_json(recovery.overall),
                    "by_campaign": [_recovery_json(r) for r in recovery.by_campaign],
                },
            }
        )
        return
    from rich.table import Table

    table = Table(title=query_title(parsed, "Loop health"), title_justify="left")
    for column in (
        "",
        "follow-ups",
        "touched in time",
        "resolved",
        "median first touch",
        "median to resolve",
    ):
        table.add_column(column, justify="left" if not column else "right")

    def add(health: Any, label: str) -> None:
        def part(count: int) -> str:
            share = health.share(count)
            return f"{count}" + ("" if share is None else f" ({share:.0%})")

        first, done = _hours(health.median_first_touch), _hours(health.median_resolution)
        table.add_row(
            label,
            str(health.followed_up),
            part(health.touched_in_time),
            part(health.resolved),
            "-" if first is None else f"{first} h",
            "-" if done is None else f"{done} h",
        )

    add(report.overall, "all")
    for health in report.by_assignee:
        add(health, f"assignee {health.group}")
    for health in report.by_campaign:
        add(health, f"campaign {health.group}")
    print_table(table)
    _print_recovery(recovery, query_title(parsed, "Recovery"))


@click.command("drivers", epilog=QUERY_HELP)
@click.argument("query", nargs=-1)
@click.option("--top", type=click.IntRange(1, 100), default=10, show_default=True, help="How many drivers.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.option(
    "--png", "png", type=click.Path(dir_okay=False, path_type=Path), help="Also write the chart here."
)
@pass_context
def drivers_command(
    ctx: CliContext, query: tuple[str, ...], top: int, as_json: bool, png: Path | None
) -> None:
    """The property values that move the score most: each value's NPS against the rest, the points it adds to
    (or costs) the overall score, and which drivers describe the same people."""
    from campaigns.scores.drivers import drivers
    from campaigns.scores.errors import QueryError

    parsed = parse_query(ctx, "score", query)
    try:
        with ctx.container.db.transaction() as session:
            found = drivers(session=session, period=parsed.period, filters=parsed.filters, top=top)  # type: ignore[union-attr]
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    if png is not None:
        from bot.query.charts import intervals_png

        rows = [
            (
                f"{d.key}={d.value}",
                (d.difference_low + d.difference_high) / 2,
                d.difference_low,
                d.difference_high,
                d.responses,
            )
            for d in found
        ]
        title = query_title(parsed, "Drivers: NPS of the segment minus the rest's")
        write_chart(
            png, intervals_png(rows, title, xlabel="difference from the rest, NPS points, 95% interval")
        )
    if as_json:
        echo_json(
            [
                {
                    "property": d.key,
                    "value": d.value,
                    "responses": d.responses,
                    "nps": d.nps,
                    "rest_nps": d.rest_nps,
                    "impact": round(d.impact, 2),
                    "difference_interval": [round(d.difference_low, 2), round(d.difference_high, 2)],
                    "significant": d.significant,
                    "same_people_as": d.same_people_as,
                }
                for d in found
            ]
        )
        return
    from rich.table import Table

    table = Table(title=query_title(parsed, "Drivers"), title_justify="left")
    for column in ("segment", "responses", "NPS", "rest", "impact", "difference (95%)", ""):
        table.add_column(column, justify="left" if column in ("segment", "") else "right")
    for d in found:
        note = (
            f"same people as {d.same_people_as}"
            if d.same_people_as
            else ("" if d.significant else "within noise")
        )
        table.add_row(
            f"{d.key}={d.value}",
            str(d.responses),
            f"{d.nps:+d}" if d.nps else "0",
            f"{d.rest_nps:+d}" if d.rest_nps else "0",
            f"{d.impact:+.1f}",
            f"{d.difference_low:+.0f} to {d.difference_high:+.0f}",
            note,
        )
    print_table(table)


@click.command("accounts", epilog=QUERY_HELP)
@click.argument("query", nargs=-1)
@click.option("--by", "account_property", default="account", show_default=True, help="The account property.")
@click.option("--roles", "role_property", default="role", show_default=True, help="The role property.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@pass_context
def accounts_command(
    ctx: CliContext, query: tuple[str, ...], account_property: str, role_property: str, as_json: bool
) -> None:
    """Account (B2B) NPS: each account's score from its people's answers, with the mix of roles that answered."""
    from campaigns.scores.accounts import accounts
    from campaigns.scores.anonymity import HIDDEN_NOTE
    from campaigns.scores.errors import QueryError

    parsed = parse_query(ctx, "score", query)
    try:
        with ctx.container.db.transaction() as session:
            found = accounts(
                session=session,
                period=parsed.period,  # type: ignore[union-attr]
                filters=parsed.filters,  # type: ignore[union-attr]
                account_property=account_property,
                role_property=role_property,
            )
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        echo_json(
            [
                {
                    "account": a.account,
                    "responses": a.responses,
                    "nps": a.nps,
                    "margin": a.margin,
                    "roles": a.roles,
                    **({"hidden": HIDDEN_NOTE} if a.hidden else {}),
                }
                for a in found
            ]
        )
        return
    from rich.table import Table

    table = Table(title=query_title(parsed, f"NPS by {account_property}"), title_justify="left")
    for column in (account_property, "responses", "NPS", "margin", role_property + "s"):
        table.add_column(column, justify="right" if column in ("responses", "NPS", "margin") else "left")
    for a in found:
        mix = ", ".join(f"{role} {count}" for role, count in a.roles.items())
        table.add_row(
            a.account,
            HIDDEN_NOTE if a.hidden else str(a.responses),
            f"{a.nps:+d}" if a.nps else "0",
            f"±{a.margin:.0f}" if a.margin is not None else "",
            mix,
        )
    print_table(table)


def register(cli: click.Group) -> None:
    for command in (funnel_command, loop_command, drivers_command, accounts_command):
        cli.add_command(command)
