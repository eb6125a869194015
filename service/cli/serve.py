"""`nps serve`: the web app (and, from the campaign engine on, the one scheduler)."""

from __future__ import annotations

import logging
from typing import Any

import click

from service.cli.context import CliContext, pass_context

log = logging.getLogger("nps.serve")


@click.command("serve")
@click.option("--host", default=None, help="Overrides HOST.")
@click.option("--port", type=int, default=None, help="Overrides PORT.")
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Run the scheduler (planning, dispatch, reminders). One per deployment; extra ones stand by.",
)
@pass_context
def serve_command(ctx: CliContext, host: str | None, port: int | None, scheduler: bool) -> None:
    """Serve the HTTP app (webhooks, survey pages, API, /healthz, /readyz) and the campaign scheduler."""
    import uvicorn  # the web stack is imported only by the command that serves it

    from service.container import integration_report
    from service.logs import uvicorn_log_config
    from service.runtime import share_the_interpreter
    from service.scheduler import Ticker
    from service.web.app import create_app

    share_the_interpreter()
    settings = ctx.settings
    container = ctx.container  # refuses a database that is missing or behind: run `nps db upgrade`
    for line in integration_report(settings):
        log.info(line)
    ticker = Ticker(container) if scheduler else None
    if ticker is not None:
        ticker.start()
    app = create_app(container, ticker=ticker)
    socket_mode = _socket_mode(app.state.slack_app, settings.slack_app_token)
    try:
        uvicorn.run(
            app,
            host=host or settings.host,
            port=port or settings.port,
            log_config=uvicorn_log_config(),  # uvicorn's loggers write through our masking handler
            access_log=False,  # request lines would carry the survey and unsubscribe tokens of their paths
            # Longer than the proxy's idle connections: a request the proxy writes onto a connection as the
            # server closes it is lost (a 502 there, a reply Twilio does not retry), with nothing in our log.
            timeout_keep_alive=settings.http_keep_alive_seconds,
        )
    finally:
        if socket_mode is not None:
            socket_mode.close()
        if ticker is not None:
            ticker.shutdown()


def _socket_mode(slack_app: Any, app_token: str | None) -> Any:
    """With SLACK_APP_TOKEN, Slack talks to us over a WebSocket we open: no public URL needed (local use)."""
    if slack_app is None or not app_token:
        return None
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    handler = SocketModeHandler(slack_app, app_token)
    handler.connect()
    log.info("Slack: connected in Socket Mode")
    return handler


def register(cli: click.Group) -> None:
    cli.add_command(serve_command)
