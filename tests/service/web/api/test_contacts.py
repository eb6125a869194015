import json

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from storage.db import Database
from storage.tables import AuditEntry, Contact

ANA = {
    "external_id": "crm-1",
    "name": "Ana Lima",
    "phone": "+49 151 12345678",
    "email": "Ana@Example.com",
    "locale": "pt_BR",
    "timezone": "America/Sao_Paulo",
    "properties": {"plan": "pro", "seats": 12},
}


def test_it_requires_an_api_key(client: TestClient, db: Database) -> None:
    response = client.post("/api/v1/contacts", json=ANA)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert (
        client.post("/api/v1/contacts", json=ANA, headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    with db.transaction() as session:
        assert session.scalars(select(Contact)).all() == []


def test_it_creates_then_updates_a_contact(client: TestClient, auth: dict[str, str], db: Database) -> None:
    created = client.post("/api/v1/contacts", json=ANA, headers=auth)
    assert created.status_code == 201
    body = created.json()
    assert body["phone"] == "+4915112345678"
    assert body["locale"] == "pt-BR"
    assert body["properties"] == {"plan": "pro", "seats": "12"}

    updated = client.post(
        "/api/v1/contacts", json={"external_id": "crm-1", "properties": {"region": "EU"}}, headers=auth
    )
    assert updated.status_code == 200
    assert updated.json()["id"] == body["id"]
    assert updated.json()["properties"] == {"plan": "pro", "seats": "12", "region": "EU"}
    with db.transaction() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == ["contact.created", "contact.updated"]
        assert session.scalar(select(AuditEntry.actor)) == "api:env"


def test_field_errors_get_422_naming_each_field(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    response = client.post(
        "/api/v1/contacts",
        json={"external_id": "x", "phone": "+1 555", "timezone": "Mars/Olympus"},
        headers=auth,
    )
    assert response.status_code == 422
    fields = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert fields == {("body", "phone"), ("body", "timezone")}
    with db.transaction() as session:
        assert session.scalars(select(Contact)).all() == []


def test_a_new_contact_without_phone_or_email_is_refused(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    response = client.post("/api/v1/contacts", json={"external_id": "x", "name": "Nobody"}, headers=auth)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "phone"]
    assert "needs a phone number or an email address" in error["msg"]
    with db.transaction() as session:
        assert session.scalars(select(Contact)).all() == []


def test_odd_json_is_a_422_not_a_500(client: TestClient, auth: dict[str, str]) -> None:
    for body in (
        {"external_id": 12},
        {"phone": "+4915112345678"},
        {"external_id": "x", "properties": [1]},
        [1, 2],
    ):
        assert client.post("/api/v1/contacts", json=body, headers=auth).status_code == 422
    assert client.post("/api/v1/contacts", content=b"\xff{not json", headers=auth).status_code == 422


@pytest.mark.parametrize(
    "properties",
    [
        {"note": "secret-" * 15_000},  # 100 KB (a 10 MB body is refused whole: 413)
        {f"k{i}": "v" for i in range(10_000)},
        {"k" * 65: "v"},
    ],
    ids=["100 KB value", "10,000 keys", "long name"],
)
def test_property_limits_get_a_short_422_naming_the_field_without_the_value(
    client: TestClient, auth: dict[str, str], db: Database, properties: dict[str, str]
) -> None:
    body = {"external_id": "crm-1", "phone": "+4915112345678", "properties": properties}
    response = client.post("/api/v1/contacts", json=body, headers=auth)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "properties"]
    assert "at most" in error["msg"]
    assert "secret" not in response.text and len(response.content) < 500
    with db.transaction() as session:
        assert session.scalars(select(Contact)).all() == []


def test_updates_cannot_grow_a_contact_past_50_properties(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    first = {f"a{i}": "v" for i in range(40)}
    body = {"external_id": "crm-1", "phone": "+4915112345678", "properties": first}
    assert client.post("/api/v1/contacts", json=body, headers=auth).status_code == 201
    more = {"external_id": "crm-1", "name": "Ana", "properties": {f"b{i}": "v" for i in range(11)}}
    response = client.post("/api/v1/contacts", json=more, headers=auth)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "properties"]
    assert "would have 51; at most 50" in error["msg"]
    # Updating the 40 stored keys and adding 10 new ones is within the limit.
    within = {"external_id": "crm-1", "properties": {**first, **{f"b{i}": "v" for i in range(10)}}}
    assert client.post("/api/v1/contacts", json=within, headers=auth).status_code == 200
    with db.transaction() as session:
        [contact] = session.scalars(select(Contact)).all()
        assert (contact.name, len(contact.properties)) == (None, 50)


def test_national_numbers_use_the_default_region(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/contacts",
        json={"external_id": "us-1", "phone": "(415) 555-2671", "default_region": "US"},
        headers=auth,
    )
    assert response.status_code == 201
    assert response.json()["phone"] == "+14155552671"


def test_keys_made_with_the_cli_are_accepted(client: TestClient, db: Database) -> None:
    from service.apikeys import create_api_key

    with db.transaction() as session:
        _, key = create_api_key("crm", session=session)
    response = client.post("/api/v1/contacts", json=ANA, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201


def test_the_openapi_schema_lists_the_api(client: TestClient, auth: dict[str, str]) -> None:
    paths = client.get("/openapi.json", headers=auth).json()["paths"]
    assert "/api/v1/contacts" in paths


@pytest.mark.parametrize("region", ["XX", "ZZ", "deu", "", " ", "ü", "D\x00"])
def test_an_unknown_default_region_is_a_422_naming_it(
    client: TestClient, auth: dict[str, str], db: Database, region: str
) -> None:
    """Issue 11 case 5: schemathesis found 638 ways to a 500 here."""
    body = {"external_id": "us-1", "phone": "(415) 555-2671", "default_region": region}
    response = client.post("/api/v1/contacts", json=body, headers=auth)
    assert response.status_code == 422
    assert ["body", "default_region"] in [error["loc"] for error in response.json()["detail"]]
    with db.transaction() as session:
        assert session.scalars(select(Contact)).all() == []


def test_a_lower_case_default_region_is_read_as_its_code(client: TestClient, auth: dict[str, str]) -> None:
    body = {"external_id": "us-1", "phone": "(415) 555-2671", "default_region": "us"}
    response = client.post("/api/v1/contacts", json=body, headers=auth)
    assert response.status_code == 201 and response.json()["phone"] == "+14155552671"


@pytest.mark.parametrize("external_id", ["", "   ", "x" * 256])
def test_what_the_schema_refuses_is_what_the_code_refuses(
    client: TestClient, auth: dict[str, str], external_id: str
) -> None:
    """An empty external_id was valid in the OpenAPI schema and refused by the code: both say no now."""
    contact = client.get("/openapi.json", headers=auth).json()["components"]["schemas"]["ContactIn"]
    assert not jsonschema_rs.is_valid(contact["properties"]["external_id"], external_id)
    body = {"external_id": external_id, "email": "a@example.com"}
    response = client.post("/api/v1/contacts", json=body, headers=auth)
    assert response.status_code == 422
    assert ["body", "external_id"] in [error["loc"] for error in response.json()["detail"]]


def test_every_answer_the_api_gives_is_documented(client: TestClient, auth: dict[str, str]) -> None:
    paths = client.get("/openapi.json", headers=auth).json()["paths"]
    for path in ("/api/v1/contacts", "/api/v1/events"):
        documented = paths[path]["post"]["responses"]
        assert {"400", "401", "413", "422"} <= set(documented), path
        for code in ("400", "401", "413"):
            assert "application/json" in documented[code]["content"], (path, code)


@pytest.mark.parametrize(
    "contact",
    [
        {"name": "Ana\x00Lima"},
        {"email": "ana@example.com\x00"},
        {"properties": {"plan": "pro\x00"}},
        {"properties": {"pl\x00an": "pro"}},
        {"name": "Ana\ud800"},  # a lone surrogate, as JSON can escape it
    ],
)
def test_text_a_database_cannot_store_is_a_422_naming_the_field(
    client: TestClient, auth: dict[str, str], db: Database, contact: dict[str, object]
) -> None:
    """Found by the fuzz step: PostgreSQL refuses NUL in text and JSONB, which was a 500 there (not on SQLite)."""
    body = {"external_id": "crm-1", "email": "ana@example.com", **contact}
    response = client.post(
        "/api/v1/contacts", content=json.dumps(body), headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert {tuple(error["loc"][:2]) for error in response.json()["detail"]} == {("body", next(iter(contact)))}
    with db.transaction() as session:
        assert session.scalars(select(Contact)).all() == []


def test_history_dates_are_stored_and_returned(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    body = {**ANA, "customer_since": "2019-03-01", "last_surveyed_at": "2026-10-02T09:30:00Z"}
    created = client.post("/api/v1/contacts", json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["customer_since"].startswith("2019-03-01T00:00:00")
    assert created.json()["last_surveyed_at"].startswith("2026-10-02T09:30:00")
    with db.transaction() as session:
        contact = session.scalars(select(Contact)).one()
        assert contact.customer_since is not None and contact.customer_since.year == 2019
    # An update without them keeps them.
    assert client.post("/api/v1/contacts", json={"external_id": "crm-1"}, headers=auth).status_code == 200
    with db.transaction() as session:
        assert session.scalars(select(Contact)).one().customer_since is not None


def test_a_bad_history_date_is_a_422_naming_the_field(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/api/v1/contacts", json={**ANA, "customer_since": "03/01/2019"}, headers=auth)
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", "customer_since"]
    assert "is not a date" in detail["msg"]
