"""`GET /api/v1/responses`: the responses, filtered with the `/nps` grammar and paginated, for scripts and BI.

`q` is what `/nps score` takes (a period and filters: `last 90d campaign:pulse plan=pro`); without a period, all
time. Pages follow response ids (keyset), so new answers arriving between two pages never shift them: `next` is
the query for the next page, absent on the last one. It carries `at`, the moment the first page was read, so a
relative period (`last 7d`) does not slide between pages and drop answers unseen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from bot.query.grammar import MAX_TEXT, GrammarError, ScoreQuery, parse
from campaigns.scores.errors import QueryError
from campaigns.scores.export import response_page
from service.container import Container
from service.web.api.auth import Actor, KeyCheckedRoute, get_container
from service.web.api.responses import ERRORS, ErrorOut

router = APIRouter(tags=["responses"], route_class=KeyCheckedRoute)
MAX_LIMIT = 1000
MAX_QUERY = MAX_TEXT - len("score ")
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)
MAX_ID = 2**31 - 1  # ids are INTEGER columns: PostgreSQL refuses a larger bound parameter


class ResponseOut(BaseModel):
    response_id: int
    answered_at: datetime
    score: int
    category: str
    comment: str | None
    channel: str
    campaign: str | None
    contact: str | None
    late: bool
    properties: dict[str, Any]


class ResponsePage(BaseModel):
    responses: list[ResponseOut]
    next: str | None


@router.get(
    "/responses",
    response_model=ResponsePage,
    responses={
        400: {
            "model": ErrorOut,
            "description": "`q` is not a query `/nps score` understands, or names no campaign",
        },
        **{code: answer for code, answer in ERRORS.items() if code == 401},
    },
)
def list_responses(
    actor: Actor,
    container: Annotated[Container, Depends(get_container)],
    q: Annotated[
        str, Query(max_length=MAX_QUERY, description="A period and filters, as `/nps score` takes them")
    ] = "",
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="The `response_id` to continue after")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    at: Annotated[
        datetime | None,
        Query(
            description="The moment a relative period (`last 7d`) is read at; `next` carries the first page's"
        ),
    ] = None,
) -> ResponsePage:
    """Responses in id order, `limit` at a time, with the properties the contact had when they answered."""
    now = container.clock.now() if at is None else at if at.tzinfo else at.replace(tzinfo=UTC)
    if not EARLIEST <= now <= LATEST:  # the grammar's years: `last 6m` of year 1 is no date at all
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "at"), "msg": "`at` must be between 1970 and 2999"}]
        )
    try:
        query = parse(f"score {q}", now, ZoneInfo(container.settings.timezone))
    except GrammarError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, error.message) from None
    if not isinstance(query, ScoreQuery):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "`q` takes a period and filters")
    period = query.period if query.period.source else None
    try:
        with container.db.transaction() as session:
            rows, last = response_page(
                session=session, filters=query.filters, period=period, after=after, limit=limit
            )
    except QueryError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    following = (
        None
        if last is None
        else "/api/v1/responses?" + urlencode({"q": q, "after": last, "limit": limit, "at": now.isoformat()})
    )
    return ResponsePage(responses=[ResponseOut(**row) for row in rows], next=following)
