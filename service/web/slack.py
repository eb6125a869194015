"""POST /slack/events: Slack's commands, interactivity and events, handed to the Bolt app.

The sync Bolt app runs in FastAPI's threadpool (a sync route), never inside the event loop; the body is read
raw because the signature covers the exact bytes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from slack_bolt import App, BoltRequest

router = APIRouter(tags=["slack"], include_in_schema=False)


async def raw_body(request: Request) -> bytes:
    return await request.body()


def slack_app(request: Request) -> App | None:
    app: App | None = request.app.state.slack_app
    return app


@router.post("/slack/events")
def slack_events(
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    app: Annotated[App | None, Depends(slack_app)],
) -> Response:
    if app is None:
        return Response("Slack is not configured on this server (SLACK_BOT_TOKEN)", status_code=404)
    bolt_request = BoltRequest(
        body=body.decode("utf-8", errors="replace"),
        query=request.url.query,
        headers={key: [value] for key, value in request.headers.items()},
    )
    result = app.dispatch(bolt_request)
    headers = {
        key: values[0] for key, values in result.headers.items() if values and key.lower() != "content-length"
    }
    return Response(result.body, status_code=result.status, headers=headers)
