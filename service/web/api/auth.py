"""Bearer-key authentication shared by every API route, checked before the request body is read."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool

from service.apikeys import authenticate
from service.container import Container

bearer = HTTPBearer(auto_error=False, description="An API key from NPS_API_KEYS or `nps apikeys create`")


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def get_container(request: Request) -> Container:
    """The app's container, as a dependency. Async: FastAPI runs a sync dependency in its threadpool, which
    costs a thread hop per request (a tenth of a Twilio reply's CPU)."""
    return container_of(request)


class KeyCheckedRoute(APIRoute):
    """An API route whose caller's key is checked before FastAPI reads and parses the body.

    FastAPI reads the body before it solves any dependency, so with the key checked in a dependency alone a
    caller without a key had a megabyte of JSON parsed before the 401. The look-up runs in the threadpool,
    like a sync dependency, never in the event loop.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def key_first(request: Request) -> Response:
            await run_in_threadpool(_authenticated, request)
            return await handler(request)

        return key_first


def _authenticated(request: Request) -> str:
    """The caller's actor name, remembered on the request; 401 without a valid key."""
    actor: str | None = getattr(request.state, "api_actor", None)
    if actor is not None:
        return actor
    scheme, key = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and key:
        container = container_of(request)
        with container.db.transaction() as session:
            actor = authenticate(
                key, session=session, now=container.clock.now(), static_keys=container.settings.api_keys
            )
    if actor is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a valid API key is required: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.api_actor = actor
    return actor


def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The caller's actor name for the audit log; 401 without a valid key.

    On a KeyCheckedRoute the key was checked before the body was read and this only returns the result;
    `credentials` is declared so that the OpenAPI schema names the bearer scheme.
    """
    return _authenticated(request)


Actor = Annotated[str, Depends(require_api_key)]
