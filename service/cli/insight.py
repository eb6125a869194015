"""`nps score`, `nps trend` and `nps compare`: the scores on the command line, with the `/nps` filter grammar.

Each reads the same query layer as `/nps` and App Home (campaigns/scores/queries.py): SQL aggregates, never the
responses loaded into Python. A table on a terminal, one JSON document with --json, a PNG chart with `trend --png`.
Property values are shown as stored: whoever holds the database's settings sees its data anyway.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from service.cli.context import CliContext, pass_context

if TYPE_CHECKING:  # imported where used: `nps --help` must not load SQLAlchemy
    from bot.query.grammar import Query
    from campaigns.scores.nps import Benchmark, Interval
    from campaigns.scores.periods import Period
    from campaigns.scores.queries import ScoreReport, SegmentReport, TrendPoint
    from campaigns.scores.trend_change import LastChange

QUERY_HELP = (
    "QUERY is what /nps takes after its command: a period (last 30d, this month, 2026-01-01..2026-03-31) and "
    'filters (campaign:NAME channel:sms plan=pro region="North America").'
)


def query_text(command: str, words: tuple[str, ...]) -> str:
    """The shell split the words; a filter value with spaces arrives as one word and is quoted again."""
    parts = [command]
    for word in words:
        key, equals, value = word.partition("=")
        if any(c.isspace() for c in word) and '"' not in word:
            word = f'{key}="{value}"' if equals else f'"{word}"'
        parts.append(word)
    return " ".join(parts)


def parse_query(ctx: CliContext, command: str, words: tuple[str, ...], saved: str = "") -> Query:
    """The `/nps` query of `command` and the shell's words, then `saved` query text (a saved theme's filters)."""
    from zoneinfo import ZoneInfo

    from bot.query.grammar import GrammarError, parse

    text = f"{query_text(command, words)} {saved}".strip()
    try:
        return parse(text, ctx.container.clock.now(), ZoneInfo(ctx.settings.timezone))
    except GrammarError as error:
        example = error.example.replace("/nps ", "nps ")
        raise click.ClickException(f"{error.message} (for example: {example})") from None


def _run(ctx: CliContext, query: Query) -> Any:
    """The query's report from the database; a query the data cannot answer (an unknown campaign) is one line."""
    from zoneinfo import ZoneInfo

    from bot.query.grammar import CompareQuery, ScoreQuery, TrendQuery
    from campaigns.scores import queries
    from campaigns.scores.errors import QueryError

    try:
        with ctx.container.db.transaction() as session:
            if isinstance(query, ScoreQuery):
                return queries.score(session=session, period=query.period, filters=query.filters)
            if isinstance(query, TrendQuery):
                zone = ZoneInfo(ctx.settings.timezone)
                return queries.trend(
                    session=session,
                    period=query.period,
                    filters=query.filters,
                    granularity=query.granularity,
                    tz=zone,
                )
            if isinstance(query, CompareQuery):
                return queries.compare(
                    session=session, property=query.property, period=query.period, filters=query.filters
                )
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    raise click.ClickException("that is not a score, trend or compare query")


# --- JSON -------------------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def _interval_json(interval: Interval | None) -> dict[str, float] | None:
    return None if interval is None else {"low": round(interval.low, 2), "high": round(interval.high, 2)}


def _period_json(period: Period) -> dict[str, str]:
    return {"start": period.start.isoformat(), "end": period.end.isoformat(), "label": period.label}


def _tally_json(report: ScoreReport | TrendPoint | SegmentReport) -> dict[str, Any]:
    from campaigns.scores.anonymity import HIDDEN_NOTE
    from campaigns.scores.nps import adjusted_wald_interval, nps_exact

    tally = report.tally
    return {
        "responses": tally.responses,
        "promoters": tally.promoters,
        "passives": tally.passives,
        "detractors": tally.detractors,
        "nps": report.nps,
        "nps_exact": _number(nps_exact(tally)),
        "margin": _number(report.margin),
        "interval_small_sample": _interval_json(adjusted_wald_interval(tally)),
        **({"hidden": HIDDEN_NOTE} if report.hidden else {}),  # eNPS (campaigns.scores.anonymity)
    }


def score_json(report: ScoreReport, benchmark: Benchmark | None = None) -> dict[str, Any]:
    document = {"period": _period_json(report.period), **_tally_json(report)}
    if benchmark is not None:
        document["benchmark"] = {
            "label": benchmark.label,
            "score": benchmark.score,
            "difference": None if report.nps is None else report.nps - benchmark.score,
        }
    document |= {
        "low_sample": report.low_sample,
        "sent": report.sent,
        "delivered": report.delivered,
        "response_rate": _number(report.response_rate, 4),
    }
    if report.previous is not None:
        change = report.change
        document["previous"] = {
            "period": _period_json(report.previous.period),
            **_tally_json(report.previous),
        }
        document["change"] = (
            None
            if change is None
            else {
                "delta": _number(change.delta),
                "low": _number(change.low),
                "high": _number(change.high),
                "significant": change.significant,
                "probability_improved": _number(report.probability_improved, 4),
            }
        )
    return document


def trend_json(points: list[TrendPoint]) -> list[dict[str, Any]]:
    """Each point with its change from the bucket with answers before it (the last one's is the last change)."""
    from campaigns.scores.trend_change import changes

    return [
        {"start": p.start.isoformat(), "end": p.end.isoformat(), **_tally_json(p), "change": _step_json(step)}
        for p, step in zip(points, changes(points), strict=True)
    ]


def _step_json(step: LastChange | None) -> dict[str, Any] | None:
    if step is None:
        return None
    return {
        "from": step.previous.start.isoformat(),
        "delta": _number(step.change.delta),
        "low": _number(step.change.low),
        "high": _number(step.change.high),
        "significant": step.significant,
        "probability_improved": _number(step.probability_improved, 4),
    }


def compare_json(segments: list[SegmentReport]) -> list[dict[str, Any]]:
    return [
        {"value": s.value, **_tally_json(s), "impact": _number(s.impact), "low_sample": s.low_sample}
        for s in segments
    ]


def echo_json(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


# --- tables -----------------------------------------------------------------------------------------------


def _signed(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "0" if round(value) == 0 else f"{value:+.0f}"


def _margin(value: float | None) -> str:
    return "" if value is None else f"±{value:.0f}"


PIPED_WIDTH = 160
"""Columns of a table written to a pipe or file, where no terminal says its width: wide enough not to wrap."""


def print_table(renderable: Any) -> None:
    import sys

    from rich.console import Console

    Console(soft_wrap=True, width=None if sys.stdout.isatty() else PIPED_WIDTH).print(renderable)


def _score_table(report: ScoreReport, title: str, benchmark: Benchmark | None) -> None:
    from rich.table import Table

    from campaigns.scores.anonymity import HIDDEN_NOTE

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value")
    tally, n = report.tally, report.responses
    table.add_row("NPS", f"{_signed(report.nps)} {_margin(report.margin)}".strip())
    interval = report.interval
    if interval is not None and report.low_sample:
        table.add_row(
            "95% interval (small sample)", f"{math.floor(interval.low):+d} to {math.ceil(interval.high):+d}"
        )
    table.add_row("responses", str(n))
    for name, count in (
        ("promoters", tally.promoters),
        ("passives", tally.passives),
        ("detractors", tally.detractors),
    ):
        table.add_row(name, f"{count} ({count / n:.0%})" if n else "0")
    rate = report.response_rate
    table.add_row("response rate", "n/a" if rate is None else f"{rate:.0%} of {report.delivered} delivered")
    if report.previous is not None:
        table.add_row("previous period", _signed(report.previous.nps))
        table.add_row("change", _change_text(report))
    if benchmark is not None and report.nps is not None:
        table.add_row(f"benchmark ({benchmark.label})", f"{benchmark.score:+d}: {benchmark.gap(report.nps)}")
    if report.low_sample:
        table.add_row("low sample", f"{n} responses: the score can move a lot with a few more answers")
    if report.hidden:
        table.add_row("hidden", HIDDEN_NOTE)
    print_table(table)


def _change_text(report: ScoreReport) -> str:
    change = report.change
    if change is None:
        return "no responses in one of the two periods"
    return _change_words(change, report.probability_improved)


def _change_words(change: Any, rose: float | None) -> str:
    """`+4 (within the margins; 64% likely a real rise)`, or `-75 (significant at 95%)`."""
    if change.significant:
        return f"{change.delta:+.0f} (significant at 95%)"
    if rose is None or round(change.delta) == 0:
        return f"{change.delta:+.0f} (within the margins)"
    likely = f"{rose:.0%} likely a real rise" if rose >= 0.5 else f"{1 - rose:.0%} likely a real drop"
    return f"{change.delta:+.0f} (within the margins; {likely})"


def _trend_table(points: list[TrendPoint], title: str, monthly: bool) -> None:
    from rich.table import Table

    from campaigns.scores.anonymity import HIDDEN_NOTE
    from campaigns.scores.trend_change import last_change

    step = last_change(points)
    caption = None
    if step is not None:
        when = "%Y-%m" if monthly else "%Y-%m-%d"
        words = _change_words(step.change, step.probability_improved)
        figure, _, reading = words.partition(" (")
        caption = (
            f"Last change: {figure} ({step.latest.start:{when}} against {step.previous.start:{when}}), "
            f"{reading.rstrip(')')}"
        )
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for column in ("from", "NPS", "margin", "responses"):
        table.add_column(column, justify="left" if column == "from" else "right")
    for point in points:
        label = f"{point.start:%Y-%m}" if monthly else f"{point.start:%Y-%m-%d}"
        table.add_row(
            label,
            _signed(point.nps),
            _margin(point.margin),
            HIDDEN_NOTE if point.hidden else str(point.responses) if point.responses else "-",
        )
    print_table(table)


def _compare_table(segments: list[SegmentReport], title: str) -> None:
    from rich.table import Table

    from campaigns.scores.anonymity import HIDDEN_NOTE

    caption = (
        "impact: points the segment adds to the overall NPS, which would move by minus the impact "
        "if the segment scored like the rest"
    )
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for column in ("value", "NPS", "margin", "responses", "impact", ""):
        table.add_column(column, justify="left" if column in ("value", "") else "right")
    for s in segments:
        table.add_row(
            s.value,
            _signed(s.nps),
            _margin(s.margin),
            str(s.responses),
            _signed(s.impact),
            HIDDEN_NOTE if s.hidden else "low sample" if s.low_sample else "",
        )
    print_table(table)


def write_chart(path: Path, png: bytes) -> None:
    """The chart to `path`; a place that cannot be written is one line, not a traceback."""
    try:
        path.write_bytes(png)
    except OSError as error:
        raise click.ClickException(f"{path}: {error.strerror or error}") from None


# --- commands ---------------------------------------------------------------------------------------------


def query_title(query: Query, head: str) -> str:
    from bot.query import formatting

    parts = [head, formatting.describe_period(query.period)]  # type: ignore[union-attr]
    filters = formatting.describe_filters(query.filters)  # type: ignore[union-attr]
    return " · ".join(parts + ([filters] if filters else []))


@click.command("score", epilog=QUERY_HELP)
@click.argument("query", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@pass_context
def score_command(ctx: CliContext, query: tuple[str, ...], as_json: bool) -> None:
    """NPS with its 95% margin, counts, response rate and the change against the previous period."""
    parsed = parse_query(ctx, "score", query)
    report = _run(ctx, parsed)
    if as_json:
        echo_json(score_json(report, ctx.settings.benchmark))
    else:
        _score_table(report, query_title(parsed, "NPS"), ctx.settings.benchmark)


@click.command("trend", epilog=QUERY_HELP)
@click.argument("query", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.option(
    "--png", "png", type=click.Path(dir_okay=False, path_type=Path), help="Also write the chart here."
)
@pass_context
def trend_command(ctx: CliContext, query: tuple[str, ...], as_json: bool, png: Path | None) -> None:
    """NPS per week (or `monthly`), weeks starting Monday in NPS_TIMEZONE; weeks without answers show as gaps."""
    parsed = parse_query(ctx, "trend", query)
    points = _run(ctx, parsed)
    title = query_title(parsed, f"NPS {parsed.granularity} trend")  # type: ignore[union-attr]
    if png is not None:
        from zoneinfo import ZoneInfo

        from bot.query.charts import trend_png

        write_chart(png, trend_png(points, title, tz=ZoneInfo(ctx.settings.timezone)))
    if as_json:
        echo_json(trend_json(points))
    else:
        _trend_table(points, title, monthly=parsed.granularity == "monthly")  # type: ignore[union-attr]


@click.command("compare", epilog=QUERY_HELP)
@click.argument("query", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.option(
    "--png", "png", type=click.Path(dir_okay=False, path_type=Path), help="Also write the chart here."
)
@pass_context
def compare_command(ctx: CliContext, query: tuple[str, ...], as_json: bool, png: Path | None) -> None:
    """NPS per value of a contact property (as it was when they answered): `nps compare plan last 90d`."""
    parsed = parse_query(ctx, "compare", query)
    segments = _run(ctx, parsed)
    if png is not None:
        from bot.query.charts import intervals_png

        rows = [
            (s.value, float(s.nps), s.nps - (s.margin or 0), s.nps + (s.margin or 0), s.responses)
            for s in segments
            if s.nps is not None
        ]
        title = query_title(parsed, f"NPS by {parsed.property}")  # type: ignore[union-attr]
        write_chart(png, intervals_png(rows, title, xlabel="NPS with its 95% margin"))
    if as_json:
        echo_json(compare_json(segments))
    else:
        _compare_table(segments, query_title(parsed, f"NPS by {parsed.property}"))  # type: ignore[union-attr]


def register(cli: click.Group) -> None:
    for command in (
        score_command,
        trend_command,
        compare_command,
    ):
        cli.add_command(command)
