"""The ASGI app served by `nps serve`: one FastAPI application, routes grouped by who calls them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bot.app import create_slack_app
from service.container import Container
from service.web import charts, docs, health, metrics, survey
from service.web import slack as slack_route
from service.web import twilio as twilio_webhooks
from service.web.api import answers, contacts, events
from service.web.limits import API_BODY, DEFAULT_BODY, SLACK_BODY, SURVEY_BODY, TWILIO_BODY

if TYPE_CHECKING:
    from service.scheduler import Ticker


def create_app(container: Container, *, ticker: Ticker | None = None) -> FastAPI:
    """The app; `ticker` is this process's scheduler, for readiness (None: run with --no-scheduler)."""
    app = FastAPI(
        title="nps-bot",
        summary="NPS surveys by SMS and email, with a Slack bot that closes the loop.",
        version="0.1.0",
        # Served by service/web/docs.py: without a CDN, and only as NPS_API_DOCS allows.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        max_body_size=DEFAULT_BODY,
    )
    app.state.container = container
    app.state.ticker = ticker
    app.state.slack_app = create_slack_app(container.slack) if container.slack else None
    app.state.slack_threads = slack_route.slack_threads() if container.slack else None
    app.state.twilio_threads = twilio_webhooks.twilio_threads(container.db.engine.dialect.name)

    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    # Each group's body limit (service/web/limits.py), enforced while the body is read.
    app.include_router(contacts.router, prefix="/api/v1", max_body_size=API_BODY)
    app.include_router(events.router, prefix="/api/v1", max_body_size=API_BODY)
    app.include_router(answers.router, prefix="/api/v1", max_body_size=API_BODY)
    app.include_router(twilio_webhooks.router, max_body_size=TWILIO_BODY)
    app.include_router(survey.router, max_body_size=SURVEY_BODY)
    app.include_router(slack_route.router, max_body_size=SLACK_BODY)
    app.include_router(charts.router)
    app.state.chart_cache = charts.ChartCache()
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(docs.router)
    app.add_exception_handler(twilio_webhooks.Forbidden, twilio_webhooks.forbidden)
    app.add_middleware(metrics.RequestMetrics, metrics=container.metrics)
    return app


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 shape without echoing the input back.

    The default handler repeats each bad value, which leaks personal data into client logs and fails outright
    (a 500) on a body that is not UTF-8.
    """
    return JSONResponse({"detail": [_field_error(e) for e in error.errors()]}, status_code=422)


def _field_error(error: Any) -> dict[str, Any]:
    return {"loc": list(error["loc"]), "msg": str(error["msg"]), "type": str(error["type"])}
