"""`/docs` and `/openapi.json`: hidden unless NPS_API_DOCS is set (the schema with an API key), and no CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from service.container import build_container
from service.settings import Settings, parse_settings
from service.web.app import create_app
from storage.db import Database


@pytest.fixture
def public_docs(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(build_container(replace(settings, api_docs=True), db=db))) as client:
        yield client


def test_by_default_the_docs_are_hidden_and_the_schema_needs_a_key(
    client: TestClient, auth: dict[str, str]
) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/openapi.json", headers={"Authorization": "Bearer nope"}).status_code == 401
    schema = client.get("/openapi.json", headers=auth)
    assert schema.status_code == 200
    assert "/api/v1/contacts" in schema.json()["paths"]


def test_with_nps_api_docs_the_docs_page_is_served_whole_from_here(public_docs: TestClient) -> None:
    page = public_docs.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    # Nothing to fetch from elsewhere: no scripts, no stylesheets, no other host.
    assert "<script" not in page.text and "<link" not in page.text
    assert re.findall(r"(?:src|href)=\"(https?:)?//", page.text) == []
    for route in ("POST /api/v1/contacts", "POST /api/v1/events"):
        method, path = route.split()
        assert f'<span class="method">{method}</span> <code>{path}</code>' in page.text
    assert "Create or update a contact by `external_id`: 201 when created" in page.text
    assert "<code>external_id</code> (required)" in page.text
    assert 'href="/openapi.json"' in page.text
    assert public_docs.get("/openapi.json").status_code == 200


def test_nps_api_docs_is_a_boolean_setting() -> None:
    assert parse_settings({}).api_docs is False
    assert parse_settings({"NPS_API_DOCS": "true"}).api_docs is True
