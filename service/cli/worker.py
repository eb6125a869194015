"""`nps worker`: extra dispatch processes. Start as many as the providers' rate allows; they share the outbox."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import click

from service.cli.context import CliContext, pass_context

if TYPE_CHECKING:
    from campaigns.dispatch.dispatcher import DispatchStats

log = logging.getLogger("nps.worker")


@click.command("worker")
@click.option("--exit-when-idle", is_flag=True, help="Stop once nothing is due (for batch jobs and tests).")
@pass_context
def worker_command(ctx: CliContext, exit_when_idle: bool) -> None:
    """Send due invitations from the outbox, without the web app or the scheduler.

    Every worker claims its own rows (FOR UPDATE SKIP LOCKED on PostgreSQL), so any number can run at once.
    On SQLite one process writes at a time: extra workers add little there.
    """
    from campaigns.dispatch.dispatcher import DispatchStats

    container = ctx.container
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping after the current batch (%s)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    dispatcher = container.new_dispatcher()
    log.info("worker %s started", dispatcher.worker_id)
    run = DispatchStats()  # what was sent since the outbox was last found empty, logged once per run
    try:
        while not stop.is_set():
            try:
                # One batch at a time, so that a stop request is seen after the batch: a whole drain of a
                # large outbox (a million due) would keep a stopped worker sending for hours.
                stats = dispatcher.drain(max_batches=1)
            except Exception:  # e.g. the database restarting: try again after a tick rather than exit
                log.exception("dispatch failed; retrying in %s s", container.settings.tick_seconds)
                stop.wait(container.settings.tick_seconds)
                continue
            run.add(stats)
            if stats.claimed:
                continue  # more may be due already
            run = log_run(run)
            if exit_when_idle:
                break
            stop.wait(container.settings.tick_seconds)
    finally:
        log_run(run)
        dispatcher.close()


def log_run(run: DispatchStats) -> DispatchStats:
    """Log what a run sent (nothing when it claimed nothing); a fresh tally for the next run."""
    if run.claimed:
        log.info("%s", run.summary("surveys"))
    return type(run)()


def register(cli: click.Group) -> None:
    cli.add_command(worker_command)
