"""`/docs` and `/openapi.json`: the API's description, served from here (no CDN), and only when allowed.

With NPS_API_DOCS=true both are public: `/docs` is a plain page listing every operation of the schema, with
no scripts or stylesheets from anywhere (interactive tools load `/openapi.json` themselves). Without it there is
no `/docs`, and `/openapi.json` answers only a request with a valid API key, so the routes are not advertised
to whoever finds the service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.templating import Jinja2Templates

from service.web.api.auth import bearer, container_of, require_api_key

router = APIRouter(include_in_schema=False)
_templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
_METHODS = ("get", "post", "put", "patch", "delete")
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "no-store",
}


@router.get("/openapi.json")
def openapi_schema(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> JSONResponse:
    if not container_of(request).settings.api_docs:
        require_api_key(request, credentials)  # 401 without a valid key
    app: FastAPI = request.app
    return JSONResponse(app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def docs_page(request: Request) -> HTMLResponse:
    if not container_of(request).settings.api_docs:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    app: FastAPI = request.app
    schema = app.openapi()
    context = {"info": schema["info"], "openapi": schema["openapi"], "operations": _operations(schema)}
    return _templates.TemplateResponse(request, "docs.html", context, headers=_HEADERS)


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation with what a reader needs: method, path, summary, text, body fields and responses."""
    components = schema.get("components", {}).get("schemas", {})
    operations = []
    for path, item in schema["paths"].items():
        for method in _METHODS:
            if method not in item:
                continue
            operation = item[method]
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "fields": _body_fields(operation, components),
                    "responses": {
                        code: r.get("description", "") for code, r in operation["responses"].items()
                    },
                }
            )
    return operations


def _body_fields(operation: dict[str, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    content = operation.get("requestBody", {}).get("content", {})
    reference = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    model = components.get(reference.rsplit("/", 1)[-1], {})
    required = set(model.get("required", []))
    return [
        {"name": name, "required": name in required, "description": field.get("description", "")}
        for name, field in model.get("properties", {}).items()
    ]
