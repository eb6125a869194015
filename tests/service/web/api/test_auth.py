"""Bearer keys on the API: a key's last use is recorded at most once a minute, and a revoked key is refused."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.clock import ManualClock
from service.apikeys import create_api_key
from service.container import Container
from storage.tables import ApiKey

CONTACT = {"external_id": "crm-1", "phone": "+4915112345678"}


def last_used(engine: Container) -> datetime | None:
    with engine.db.transaction() as session:
        return session.scalar(select(ApiKey.last_used_at))


def test_last_use_is_recorded_but_not_rewritten_within_a_minute(
    engine: Container, app: TestClient, clock: ManualClock
) -> None:
    with engine.db.transaction() as session:
        _, key = create_api_key("crm", session=session)
    headers = {"Authorization": f"Bearer {key}"}
    assert last_used(engine) is None
    started = clock.now()

    assert app.post("/api/v1/contacts", json=CONTACT, headers=headers).status_code == 201
    assert last_used(engine) == started
    clock.advance(seconds=59)
    assert app.post("/api/v1/contacts", json=CONTACT, headers=headers).status_code == 200
    assert last_used(engine) == started  # a burst of requests writes the key's row once
    clock.advance(seconds=2)
    assert app.post("/api/v1/contacts", json=CONTACT, headers=headers).status_code == 200
    assert last_used(engine) == started + timedelta(seconds=61)


def test_a_revoked_key_is_refused(engine: Container, app: TestClient, clock: ManualClock) -> None:
    with engine.db.transaction() as session:
        row, key = create_api_key("crm", session=session)
        row.revoked_at = clock.now()
    response = app.post("/api/v1/contacts", json=CONTACT, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
    assert last_used(engine) is None
