"""The ASGI app served by `nps serve`: one FastAPI application, routes grouped by who calls them."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from service.api import contacts
from service.container import Container


def create_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="nps-bot",
        summary="NPS surveys by SMS and email, with a Slack bot that closes the loop.",
        version="0.1.0",
    )
    app.state.container = container

    @app.get("/healthz", tags=["ops"])
    def healthz() -> JSONResponse:
        """Liveness and readiness: 200 when the database answers, 503 otherwise."""
        if container.db.is_reachable():
            return JSONResponse({"status": "ok", "database": "ok"})
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)

    app.include_router(contacts.router, prefix="/api/v1")
    return app
