"""`GET /charts/trend.png`: the trend chart behind a signed, expiring link (`bot.chart_links`).

Slack's image proxy fetches the images of App Home, the digest and `/nps trend` answers from here. The link is
the authentication: a missing, wrong or expired signature is a 403, a malformed link a 400, each with one line
of text. Drawing costs a database read and a quarter second of matplotlib, so the cost is bounded: each link's PNG
is kept until the link expires (at most CACHE_SIZE of them), requests for a link being drawn wait for that one
drawing, and at most MAX_RENDERS drawings run at once; a request that waits longer than QUEUE_SECONDS for its turn
gets a 503 with Retry-After. A drawing's reads give up after READ_TIMEOUT (a migration locking `responses`),
so a lock never holds a slot: that link is a 503 with Retry-After too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from bot.chart_blocks import render_trend
from bot.chart_links import LinkError, TrendChart
from campaigns.scores.errors import QueryError
from service.container import Container
from storage.bounded import bounded_reads

log = logging.getLogger(__name__)
router = APIRouter(tags=["charts"])

MAX_RENDERS = 2  # the machine's cores: more at once would only make each slower
QUEUE_SECONDS = 10.0
CACHE_SIZE = 64  # PNGs of about 60 kB
# A drawing's reads give up after this: its slot is free again, the link a 503 with Retry-After.
READ_TIMEOUT = timedelta(seconds=5)
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_ERROR_HEADERS = {"Cache-Control": "no-store"}


class Busy(Exception):
    """No drawing slot came free in time."""


class ChartCache:
    """Each signed link's PNG until the link expires; one drawing per link at a time; MAX_RENDERS at once."""

    def __init__(self, *, renders: int = MAX_RENDERS, queue_seconds: float = QUEUE_SECONDS) -> None:
        self.renders, self.queue_seconds = renders, queue_seconds
        self._pngs: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._drawing: dict[str, asyncio.Task[bytes]] = {}
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    async def png(self, key: str, expires: int, now: float, draw: Callable[[], bytes]) -> bytes:
        cached = self._pngs.get(key)
        if cached is not None and cached[0] > now:
            self._pngs.move_to_end(key)  # least recently served goes first: the digest's link stays
            return cached[1]
        task = self._drawing.get(key)
        if task is None:
            task = asyncio.create_task(self._draw(key, expires, draw))
            task.add_done_callback(
                lambda done: done.cancelled() or done.exception()
            )  # retrieved, never logged
            self._drawing[key] = task
        # Shielded: a client that goes away does not cancel the drawing others wait for.
        return await asyncio.shield(task)

    async def _draw(self, key: str, expires: int, draw: Callable[[], bytes]) -> bytes:
        try:
            slots = self._semaphore()
            try:
                await asyncio.wait_for(slots.acquire(), self.queue_seconds)
            except TimeoutError:
                raise Busy from None
            try:
                png = await anyio.to_thread.run_sync(draw)
            finally:
                slots.release()
            self._keep(key, expires, png)
            return png
        finally:
            self._drawing.pop(key, None)

    def _semaphore(self) -> asyncio.Semaphore:
        """The slots of the running loop (a test client may run each request on a loop of its own)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.renders))
        return self._slots[1]

    def _keep(self, key: str, expires: int, png: bytes) -> None:
        self._pngs[key] = (expires, png)
        self._pngs.move_to_end(key)
        while len(self._pngs) > CACHE_SIZE:
            self._pngs.popitem(last=False)


# HEAD too: an image proxy may check the type and length before it fetches (Starlette sends no body for it).
@router.api_route(
    "/charts/trend.png",
    methods=["GET", "HEAD"],
    response_class=Response,
    summary="The trend chart of a signed link",
    description=(
        "The PNG that App Home, the weekly digest and `/nps trend` show. The links are made by the service and "
        "signed; they expire after 7 days."
    ),
    responses={
        200: {
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            "description": "PNG",
        },
        400: {"content": _TEXT, "description": "A malformed link"},
        403: {"content": _TEXT, "description": "A link not signed by this service, or expired"},
        503: {"content": _TEXT, "description": "Too many charts being drawn; try again"},
    },
)
async def trend_chart(
    request: Request,
    g: Annotated[str | None, Query(description="weekly or monthly")] = None,
    start: Annotated[str | None, Query(alias="from", description="period start, Unix seconds")] = None,
    end: Annotated[str | None, Query(alias="to", description="period end, Unix seconds")] = None,
    campaign: Annotated[str | None, Query()] = None,
    channel: Annotated[str | None, Query(description="sms or email")] = None,
    expires: Annotated[str | None, Query(description="Unix seconds")] = None,
    sig: Annotated[str | None, Query(description="HMAC-SHA256, hex")] = None,
) -> Response:
    # The declared parameters document the link; it is read from the raw query, where repeats show.
    container: Container = request.app.state.container
    links = container.chart_links
    now = container.clock.now()
    try:
        if links is None:
            raise LinkError(403, "Charts are not served: no NPS_SECRET_KEY or Slack secret is set.")
        chart, until = links.verify(request.query_params.multi_items(), now=now)
    except LinkError as error:
        return PlainTextResponse(error.message, status_code=error.status, headers=_ERROR_HEADERS)
    cache: ChartCache = request.app.state.chart_cache
    try:
        png = await cache.png(_key(chart, until), until, now.timestamp(), _drawer(container, chart))
    except Busy:
        return PlainTextResponse(
            "Busy drawing charts; try again.", 503, headers={**_ERROR_HEADERS, "Retry-After": "5"}
        )
    except QueryError as error:
        return PlainTextResponse(str(error), 400, headers=_ERROR_HEADERS)
    except Exception as error:  # the database away, say: the image is missing, never a 500 with a trace
        log.warning("trend chart not drawn: %s", type(error).__name__)
        return PlainTextResponse(
            "The chart could not be drawn; try again.", 503, headers={**_ERROR_HEADERS, "Retry-After": "30"}
        )
    max_age = max(0, until - int(now.timestamp()))
    headers = {"Cache-Control": f"public, max-age={max_age}, immutable", "X-Content-Type-Options": "nosniff"}
    return Response(png, media_type="image/png", headers=headers)


def _key(chart: TrendChart, expires: int) -> str:
    """A verified link's identity: the chart and its expiry (what the signature covers)."""
    return f"{chart!r}@{expires}"


def _drawer(container: Container, chart: TrendChart) -> Callable[[], bytes]:
    tz = ZoneInfo(container.settings.timezone)  # the zone the Slack side cuts its buckets in (NPS_TIMEZONE)

    def draw() -> bytes:
        # A migration's lock on `responses` would otherwise hold a drawing slot and its thread until it ends.
        with bounded_reads(container.db, READ_TIMEOUT) as bounded:
            return render_trend(bounded, chart, tz)

    return draw
