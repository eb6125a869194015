"""The error answers every API route can give, for the OpenAPI schema (FastAPI documents 422 by itself)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.web.limits import API_BODY


class ErrorOut(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body could not be read (e.g. a form where JSON belongs)"},
    401: {
        "model": ErrorOut,
        "description": "No valid API key (`Authorization: Bearer <key>`); checked before the body is read",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    },
    413: {
        "description": f"The body is over {API_BODY // 1024} KiB; refused while it is read. JSON when the limit is "
        "reached while reading, plain text when the Content-Length already says so",
        "content": {
            "application/json": {"schema": ErrorOut.model_json_schema()},
            "text/plain": {"schema": {"type": "string"}},
        },
    },
}
