"""Bearer-key authentication shared by every API route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.apikeys import authenticate
from service.container import Container

bearer = HTTPBearer(auto_error=False, description="An API key from NPS_API_KEYS or `nps apikeys create`")


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The caller's actor name for the audit log; 401 without a valid key."""
    container = get_container(request)
    key = credentials.credentials if credentials else ""
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
    return actor


Actor = Annotated[str, Depends(require_api_key)]
