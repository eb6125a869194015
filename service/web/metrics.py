"""`GET /metrics` for Prometheus, and the middleware that times every request by its route.

Open by default on the app's own port, like `/readyz`: the numbers are counts, never personal data, ids or
tokens. With `NPS_METRICS_TOKEN` set it wants `Authorization: Bearer <token>` (Prometheus's `authorization`
scrape setting), for a deployment whose proxy cannot keep the path private (docs/deploy.md).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.container import Container
from service.metrics.registry import Metrics

router = APIRouter(tags=["ops"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus's text format: this process's requests and jobs, and the database's totals."""
    container: Container = request.app.state.container
    token = container.settings.metrics_token
    if token and not _bearer_matches(request.headers.get("authorization", ""), token):
        return PlainTextResponse(
            "GET /metrics wants Authorization: Bearer <NPS_METRICS_TOKEN>\n",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(container.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class RequestMetrics:
    """ASGI middleware: counts and times each HTTP request under its route's template.

    The router writes the matched route into the request's scope; read once the app has answered, its `path`
    is the template (`/s/{token}`), which keeps the labels few and the tokens out of them.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before it starts a response

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route: Any = scope.get("route")
            self.metrics.request_answered(
                scope["method"], getattr(route, "path", None), status, time.perf_counter() - started
            )
