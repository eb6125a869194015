"""`nps events`: what happened, from the database, for one contact, one campaign or a time range."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from service.cli.context import CliContext, pass_context

if TYPE_CHECKING:  # imported where used: `nps --help` must not load SQLAlchemy
    from campaigns.timeline import Entry, Filters
    from storage.db import Database

_AGO = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DEFAULT_WINDOW = timedelta(hours=24)


def parse_moment(value: str | None, now: datetime) -> datetime | None:
    """'2026-11-23', '2026-11-23T10:00' (UTC unless it says otherwise), or a time ago: '30m', '2h', '7d', '1w'."""
    if value is None:
        return None
    text = value.strip()
    ago = _AGO.fullmatch(text)
    if ago:
        try:
            return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
        except OverflowError:
            raise click.BadParameter(f"{value!r} is further back than any date can be") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a date (2026-11-23), a time (2026-11-23T10:00) nor a time ago (30m, 2h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def shown(entry: Entry, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {"time": entry.at.isoformat(), "event": entry.event, "text": entry.text, "fields": entry.fields},
            ensure_ascii=False,
            default=str,
        )
    return f"{entry.at:%Y-%m-%d %H:%M:%S}  {entry.text}"


def poll(db: Database, filters: Filters, seen: set[str], *, show_personal: bool) -> list[Entry]:
    """The entries not shown yet (`seen` holds the keys of those shown, and is updated)."""
    from campaigns.timeline import timeline

    with db.transaction() as session:
        entries = timeline(filters, show_personal=show_personal, session=session)
    new = [e for e in entries if e.key not in seen]
    seen.update(e.key for e in new)
    return new


@click.command("events")
@click.option(
    "--contact", metavar="ID", help="One contact: its external id (or numeric id); its whole history."
)
@click.option("--campaign", metavar="NAME", help="One campaign.")
@click.option(
    "--since", metavar="WHEN", help="From this moment: 2026-11-23, 2026-11-23T10:00 or 30m/2h/7d ago."
)
@click.option("--until", metavar="WHEN", help="Up to this moment (same forms).")
@click.option("--follow", is_flag=True, help="Keep watching and print new entries as they happen.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between polls with --follow.",
)
@click.option("--max-seconds", type=click.FloatRange(0), default=None, help="Stop following after this long.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--show-personal-data", is_flag=True, help="Show numbers, addresses, names, replies and comments."
)
@pass_context
def events_command(
    ctx: CliContext,
    contact: str | None,
    campaign: str | None,
    since: str | None,
    until: str | None,
    follow: bool,
    interval: float,
    max_seconds: float | None,
    as_json: bool,
    show_personal_data: bool,
) -> None:
    """What happened, in time order: surveys planned and sent, delivery reports, replies, comments, alerts,
    follow-ups, opt-outs and opt-ins, and the audit trail.

    Without --contact or --since, the last 24 hours. Personal data is masked unless --show-personal-data.
    """
    from campaigns.timeline import Filters, UnknownCampaign, UnknownContact

    now = ctx.container.clock.now()
    start = parse_moment(since, now)
    if start is None and contact is None:
        start = now - DEFAULT_WINDOW
    filters = Filters(contact=contact, campaign=campaign, since=start, until=parse_moment(until, now))
    db = ctx.container.db
    seen: set[str] = set()

    def show_new() -> int:
        try:
            new = poll(db, filters, seen, show_personal=show_personal_data)
        except (UnknownContact, UnknownCampaign) as error:
            raise click.ClickException(str(error)) from None
        for entry in new:
            click.echo(shown(entry, as_json))
        return len(new)

    if show_new() == 0 and not follow and not as_json:
        click.echo("Nothing happened in that range.", err=True)
    if follow:
        _follow(show_new, interval, max_seconds)


def _follow(show_new: Callable[[], int], interval: float, max_seconds: float | None) -> None:
    stop_at = None if max_seconds is None else time.monotonic() + max_seconds
    try:
        while stop_at is None or time.monotonic() < stop_at:
            wait = interval if stop_at is None else max(0.0, min(interval, stop_at - time.monotonic()))
            time.sleep(wait)
            show_new()
    except KeyboardInterrupt:
        pass


def register(cli: click.Group) -> None:
    cli.add_command(events_command)
