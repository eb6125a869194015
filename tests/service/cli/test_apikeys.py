"""`nps apikeys create|list|revoke`: keys are shown once, listed by prefix, and refused once revoked."""

from __future__ import annotations

import os

from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.cli import cli
from storage.db import Database
from storage.tables import ApiKey, AuditEntry

CONTACT = {"external_id": "crm-1", "phone": "+4915112345678"}


def nps(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": database_url})


def create(database_url: str, name: str) -> str:
    result = nps(database_url, "apikeys", "create", name)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_created_keys_carry_256_random_bits_and_only_their_hash_is_stored(
    database_url: str, db: Database
) -> None:
    keys = {create(database_url, "crm") for _ in range(3)}
    assert len(keys) == 3
    assert all(key.startswith("nps_") and len(key) >= len("nps_") + 43 for key in keys)  # token_urlsafe(32)
    with db.transaction() as session:
        stored = " ".join(
            f"{row.prefix} {row.key_hash} {row.name}" for row in session.scalars(select(ApiKey))
        )
    assert not any(key in stored for key in keys)


def test_list_shows_prefix_name_created_and_last_used_never_the_key(
    database_url: str, db: Database, client: TestClient
) -> None:
    crm = create(database_url, "crm")
    create(database_url, "shop")
    assert (
        client.post("/api/v1/contacts", json=CONTACT, headers={"Authorization": f"Bearer {crm}"}).status_code
        == 201
    )

    result = nps(database_url, "apikeys", "list")

    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["ID", "PREFIX", "NAME", "CREATED", "(UTC)", "LAST", "USED", "REVOKED"]
    by_name = {line.split()[2]: line for line in lines}
    assert set(by_name) == {"crm", "shop"}
    assert by_name["crm"].split()[1] == crm[:10]
    assert "never" in by_name["shop"] and "never" not in by_name["crm"]
    assert all(line.endswith("  -") for line in lines)  # not revoked
    assert crm not in result.stdout and crm[10:20] not in result.stdout


def test_a_revoked_key_gets_401_by_prefix_or_by_id(
    database_url: str, db: Database, client: TestClient
) -> None:
    first, second = create(database_url, "crm"), create(database_url, "shop")
    for key in (first, second):
        assert client.post(
            "/api/v1/contacts", json=CONTACT, headers={"Authorization": f"Bearer {key}"}
        ).status_code in (200, 201)
    with db.transaction() as session:
        second_id = session.scalar(select(ApiKey.id).where(ApiKey.name == "shop"))

    by_prefix = nps(database_url, "apikeys", "revoke", first[:10])
    by_id = nps(database_url, "apikeys", "revoke", str(second_id))

    assert by_prefix.exit_code == 0 and by_prefix.stdout == f"{first[:10]}… (crm): revoked\n"
    assert by_id.exit_code == 0 and by_id.stdout == f"{second[:10]}… (shop): revoked\n"
    for key in (first, second):
        response = client.post("/api/v1/contacts", json=CONTACT, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401
    listing = nps(database_url, "apikeys", "list").stdout.splitlines()[1:]
    assert len(listing) == 2 and not any(line.endswith("  -") for line in listing)
    again = nps(database_url, "apikeys", "revoke", first[:10])
    assert again.exit_code == 0 and "was already revoked" in again.stdout
    with db.transaction() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("apikey.revoked") == 2


def test_revoking_an_unknown_or_ambiguous_key_changes_nothing(database_url: str, db: Database) -> None:
    create(database_url, "crm")
    unknown = nps(database_url, "apikeys", "revoke", "nps_")
    assert unknown.exit_code == 1
    assert "no API key with the prefix or id 'nps_'; `nps apikeys list` shows them" in unknown.stderr
    with db.transaction() as session:  # two keys whose first characters happen to agree
        session.add_all(
            ApiKey(name=name, prefix="nps_same42", key_hash=name * 16) for name in ("aaaa", "bbbb")
        )
    ambiguous = nps(database_url, "apikeys", "revoke", "nps_same42…")
    assert ambiguous.exit_code == 1
    assert "2 keys have the prefix nps_same42; revoke one by its id (`nps apikeys list`)" in ambiguous.stderr
    with db.transaction() as session:
        assert session.scalars(select(ApiKey.revoked_at)).all() == [None, None, None]
