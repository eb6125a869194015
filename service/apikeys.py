"""HTTP API keys: random, shown once, stored as SHA-256; listed by prefix, revoked by prefix or id."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from storage.tables import ApiKey

KEY_PREFIX = "nps_"
# What `nps apikeys list` shows of a key and `revoke` takes: "nps_" and 6 of its 43 random characters.
SHOWN_LENGTH = len(KEY_PREFIX) + 6
# A key's last use is written at most this often, so that a burst of requests is not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyNotFound(LookupError):
    """No key, or more than one, answers to the prefix or id; the message says which and what to do."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(name: str, *, session: Session) -> tuple[ApiKey, str]:
    """Store a new key and return it with its clear text, which is never stored.

    256 random bits (secrets.token_urlsafe(32)): far beyond guessing, so a plain SHA-256 is enough to store.
    """
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:SHOWN_LENGTH], key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return row, key


def authenticate(key: str, *, session: Session, now: datetime, static_keys: Iterable[str] = ()) -> str | None:
    """The actor name for a valid, unrevoked key ("api:<prefix>"), or None. Keys from NPS_API_KEYS count too.

    The key's last use is set to `now` when it is older than LAST_USED_RESOLUTION, as a compare-and-set on
    that age: concurrent requests write it once.
    """
    if not key:
        return None
    for static in static_keys:
        if hmac.compare_digest(static.encode(), key.encode()):
            return "api:env"
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))
    if row is None:
        return None
    if row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION:
        session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == row.id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_RESOLUTION),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    return f"api:{row.prefix}"


def list_api_keys(*, session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.id)).all()


def find_api_key(reference: str, *, session: Session) -> ApiKey:
    """The key `reference` names: its id, or its prefix as `list` shows it (a trailing "…" is ignored)."""
    reference = reference.strip().removesuffix("…")
    if reference.isdigit():
        row = session.get(ApiKey, int(reference))
        if row is not None:
            return row
    rows = session.scalars(select(ApiKey).where(ApiKey.prefix == reference)).all()
    if len(rows) > 1:
        raise ApiKeyNotFound(
            f"{len(rows)} keys have the prefix {reference}; revoke one by its id (`nps apikeys list`)"
        )
    if not rows:
        raise ApiKeyNotFound(f"no API key with the prefix or id {reference!r}; `nps apikeys list` shows them")
    return rows[0]


def revoke_api_key(row: ApiKey, *, session: Session, now: datetime) -> bool:
    """Revoke the key from now on; False when it was revoked already (compare-and-set on revoked_at)."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.id == row.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(row)
    return bool(result.rowcount)  # type: ignore[attr-defined]
