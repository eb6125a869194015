"""`nps alerts` and `nps alerts retry`: the Slack alerts that need someone (failed, held, for review)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from service.cli.context import CliContext, pass_context

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from storage.tables import SlackAlert


@click.group("alerts", invoke_without_command=True)
@pass_context
@click.pass_context
def alerts_group(click_ctx: click.Context, ctx: CliContext) -> None:
    """List Slack alerts that failed, are held on a broken channel, or wait for review, with the reason."""
    if click_ctx.invoked_subcommand is not None:
        return
    from campaigns.followups.alert_queue import alerts_needing_someone

    with ctx.container.db.transaction() as session:
        waiting = alerts_needing_someone(session)
    if not waiting:
        click.echo("No failed, held or review alerts.")
        return
    click.echo(f"{'ID':>6}  {'STATE':<8}  {'KIND':<10}  {'CHANNEL':<12}  {'TRIES':>5}  {'SINCE':<16}  REASON")
    for alert in waiting:
        click.echo(_line(alert))


def _line(alert: SlackAlert) -> str:
    from campaigns.followups.alert_queue import shown_state

    since = f"{alert.updated_at:%Y-%m-%d %H:%M}"
    channel = alert.held_channel or alert.channel or "(default)"
    reason = alert.last_error or "-"
    return f"{alert.id:>6}  {shown_state(alert):<8}  {alert.kind:<10}  {channel:<12}  {alert.attempts:>5}  {since:<16}  {reason}"


@alerts_group.command("retry")
@click.argument("alert_ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every failed, held and review alert.")
@pass_context
def retry_command(ctx: CliContext, alert_ids: tuple[int, ...], every: bool) -> None:
    """Queue the alerts ALERT_IDS (or --all) again; the poster posts them in order on its next run.

    Retry a review alert only after checking its channel: it is posted as new.
    """
    if bool(alert_ids) == every:
        raise click.UsageError("name the alerts to retry, or pass --all")
    from campaigns.followups.alert_queue import queue_again

    now = ctx.container.clock.now()
    with ctx.container.db.transaction() as session:
        if alert_ids:
            _refuse_settled(list(alert_ids), session=session)
        queued = queue_again(None if every else list(alert_ids), now=now, session=session)
    click.echo(f"{len(queued)} alerts queued again" + (f": {', '.join(map(str, queued))}" if queued else ""))


def _refuse_settled(alert_ids: list[int], *, session: Session) -> None:
    from campaigns.followups.alert_queue import shown_state
    from storage.tables import SlackAlert

    for alert_id in alert_ids:
        alert = session.get(SlackAlert, alert_id)
        if alert is None:
            raise click.ClickException(f"alert {alert_id} does not exist")
        if shown_state(alert) not in ("failed", "held", "review"):
            raise click.ClickException(
                f"alert {alert_id} is {alert.state}; only failed, held or review alerts can be retried"
            )


def register(cli: click.Group) -> None:
    cli.add_command(alerts_group)
