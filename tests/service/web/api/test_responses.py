"""`GET /api/v1/responses`: filtered with the `/nps` grammar, paginated by id, behind the API key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from campaigns.clock import ManualClock
from service.container import build_container
from service.settings import Settings
from service.web.app import create_app
from storage.db import Database
from tests.fixtures.seeding import Seeder

MAY = datetime(2026, 5, 13, 12, tzinfo=UTC)


def seed(db: Database) -> None:
    seeder = Seeder(db)
    pulse = seeder.campaign("pulse")
    seeder.responses(
        [10, 9, 3], at=MAY, step=timedelta(minutes=1), campaign_id=pulse, snapshot={"plan": "pro"}
    )
    seeder.responses([7, 2], at=MAY + timedelta(hours=1), snapshot={"plan": "basic"}, comment="=1+1")
    seeder.responses([8], at=datetime(2026, 1, 5, tzinfo=UTC), snapshot={"plan": "pro"})


def test_it_requires_an_api_key(client: TestClient) -> None:
    assert client.get("/api/v1/responses").status_code == 401


def test_pages_follow_ids_and_end_without_a_next_link(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    seed(db)
    first = client.get("/api/v1/responses", params={"limit": 4}, headers=auth)
    assert first.status_code == 200
    body = first.json()
    assert [r["score"] for r in body["responses"]] == [10, 9, 3, 7]
    assert body["next"].startswith("/api/v1/responses?q=&after=4&limit=4&at=2")
    rest = client.get(body["next"], headers=auth).json()
    assert [r["score"] for r in rest["responses"]] == [2, 8] and rest["next"] is None
    answer = body["responses"][0]
    assert (answer["campaign"], answer["category"], answer["properties"]) == (
        "pulse",
        "promoter",
        {"plan": "pro"},
    )
    assert body["responses"][3]["comment"] == "=1+1"  # JSON as stored: nothing runs it


def test_q_filters_like_nps_score(client: TestClient, auth: dict[str, str], db: Database) -> None:
    seed(db)
    pro_in_may = client.get(
        "/api/v1/responses", params={"q": "2026-05-01..2026-05-31 plan=pro"}, headers=auth
    )
    assert [r["score"] for r in pro_in_may.json()["responses"]] == [10, 9, 3]
    pulse = client.get("/api/v1/responses", params={"q": "campaign:pulse channel:sms"}, headers=auth)
    assert len(pulse.json()["responses"]) == 3


def test_a_query_it_cannot_read_is_a_400_with_the_reason(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    for q, says in (("channel:fax", "fax"), ("campaign:nope", "nope"), ("trend weekly", "")):
        answer = client.get("/api/v1/responses", params={"q": q}, headers=auth)
        assert answer.status_code == 400, (q, answer.text)
        assert says in answer.json()["detail"]
    assert client.get("/api/v1/responses", params={"limit": 0}, headers=auth).status_code == 422
    assert client.get("/api/v1/responses", params={"q": "x" * 2000}, headers=auth).status_code == 422


def test_after_is_bounded_by_the_id_column(client: TestClient, auth: dict[str, str]) -> None:
    """Found by the fuzz step: ids are INTEGER, and PostgreSQL refused `after=2147483648` with a 500."""
    last = client.get("/api/v1/responses", params={"after": 2**31 - 1}, headers=auth)
    assert last.status_code == 200 and last.json() == {"responses": [], "next": None}
    assert client.get("/api/v1/responses", params={"after": 2**31}, headers=auth).status_code == 422


def test_a_relative_period_stays_where_the_first_page_put_it(
    settings: Settings, db: Database, auth: dict[str, str]
) -> None:
    """`q=last 7d` read a day later on the second page would move its window: an answer from the first of the 7
    days would drop out unseen (and with `after`, never come back). The `next` link carries the moment the first
    page was read (`at`), so every page reads the same window."""
    clock = ManualClock(MAY + timedelta(days=6, hours=12))  # "last 7d": from 2026-05-12 12:00 on
    seeder = Seeder(db)
    seeder.responses([10, 9], at=MAY, step=timedelta(minutes=1))  # 2026-05-13 12:00, inside the 7 days
    seeder.responses([3], at=MAY + timedelta(days=5))
    with TestClient(create_app(build_container(settings, db=db, clock=clock))) as client:
        first = client.get("/api/v1/responses", params={"q": "last 7d", "limit": 1}, headers=auth).json()
        assert [r["score"] for r in first["responses"]] == [10]
        clock.advance(days=2)  # the window of `last 7d` now starts after the second answer
        rest = client.get(first["next"], headers=auth)
        assert rest.status_code == 200, rest.text
        second = rest.json()
        assert [r["score"] for r in second["responses"]] == [9]
        third = client.get(second["next"], headers=auth).json()
        assert [r["score"] for r in third["responses"]] == [3] and third["next"] is None
        fresh = client.get("/api/v1/responses", params={"q": "last 7d"}, headers=auth).json()
        assert [r["score"] for r in fresh["responses"]] == [3]  # a new first page reads the window of now


def test_an_at_outside_the_years_of_the_grammar_is_a_422(client: TestClient, auth: dict[str, str]) -> None:
    for at in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "not-a-time"):
        answer = client.get("/api/v1/responses", params={"q": "last 30d", "at": at}, headers=auth)
        assert answer.status_code == 422, (at, answer.text)
    ok = client.get("/api/v1/responses", params={"q": "last 30d", "at": "2026-05-13T12:00:00"}, headers=auth)
    assert ok.status_code == 200, ok.text
