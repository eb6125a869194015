"""POST /slack/events: Slack's commands, interactivity and events, handed to the Bolt app.

The sync Bolt app runs in FastAPI's threadpool (a sync route), never inside the event loop; the body is read
raw because the signature covers the exact bytes. Before it is read, the headers must be able to carry a valid
signature: Slack signs every request with `X-Slack-Signature: v0=<64 hex digits>` over `X-Slack-Request-Timestamp`
(Unix seconds, refused by Bolt when more than five minutes off) and the body. A request without them is
refused with 401 before a byte of its body is read, and never reaches Bolt (which would fail with a 500 on a
timestamp that is not a number).

Bolt runs in threads of its own (`slack_threads`), not in the pool FastAPI runs sync routes in: that pool (40
threads) is shared with the Twilio webhooks, and a burst of replies waiting for a database connection can hold
every thread of it, while a slash command needs none and must be acked within Slack's 3 seconds.
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from slack_bolt import App, BoltRequest

router = APIRouter(tags=["slack"], include_in_schema=False)

_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
# Bolt's own tolerance (slack_sdk.signature.SignatureVerifier): a request older or newer than this is a replay.
_MAX_CLOCK_SKEW_SECONDS = 60 * 5
# Slack requests served at once; Bolt's listeners themselves run in Bolt's own pool, these threads wait for the ack.
SLACK_THREADS = 16


def slack_threads() -> ThreadPoolExecutor:
    """The threads that hand Slack's requests to Bolt, one pool per app (`app.state.slack_threads`)."""
    return ThreadPoolExecutor(max_workers=SLACK_THREADS, thread_name_prefix="slack")


async def slack_app(request: Request) -> App:
    app: App | None = request.app.state.slack_app
    if app is None:
        raise HTTPException(404, detail="Slack is not configured on this server (SLACK_BOT_TOKEN)")
    return app


async def signed_body(request: Request, _app: Annotated[App, Depends(slack_app)]) -> bytes:
    """The raw body, read only when the signature headers are there and well formed; 401 otherwise."""
    problem = _signature_headers_problem(
        request.headers.get("x-slack-signature"), request.headers.get("x-slack-request-timestamp")
    )
    if problem is not None:
        raise HTTPException(401, detail=f"invalid request: {problem}")
    return await request.body()


def _signature_headers_problem(signature: str | None, timestamp: str | None) -> str | None:
    if not signature or _SIGNATURE.fullmatch(signature) is None:
        return "X-Slack-Signature is missing or not a v0 signature"
    if not timestamp or len(timestamp) > 12 or not (timestamp.isascii() and timestamp.isdigit()):
        return "X-Slack-Request-Timestamp is missing or not a number"
    if abs(time.time() - int(timestamp)) > _MAX_CLOCK_SKEW_SECONDS:
        return "X-Slack-Request-Timestamp is more than five minutes off"
    return None


@router.post("/slack/events")
async def slack_events(
    request: Request,
    app: Annotated[App, Depends(slack_app)],
    body: Annotated[bytes, Depends(signed_body)],
) -> Response:
    bolt_request = BoltRequest(
        body=body.decode("utf-8", errors="replace"),
        query=request.url.query,
        headers={key: [value] for key, value in request.headers.items()},
    )
    threads: ThreadPoolExecutor = request.app.state.slack_threads
    result = await asyncio.get_running_loop().run_in_executor(threads, app.dispatch, bolt_request)
    headers = {
        key: values[0] for key, values in result.headers.items() if values and key.lower() != "content-length"
    }
    return Response(result.body, status_code=result.status, headers=headers)
