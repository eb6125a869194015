"""HTTP API keys: random, shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.tables import ApiKey
from storage.types import utcnow

KEY_PREFIX = "nps_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(name: str, *, session: Session) -> tuple[ApiKey, str]:
    """Store a new key and return it with its clear text, which is never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[: len(KEY_PREFIX) + 6], key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return row, key


def authenticate(key: str, *, session: Session, static_keys: Iterable[str] = ()) -> str | None:
    """The actor name for a valid key ("api:<prefix>"), or None. Keys from NPS_API_KEYS are checked too."""
    if not key:
        return None
    for static in static_keys:
        if hmac.compare_digest(static.encode(), key.encode()):
            return "api:env"
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))
    if row is None:
        return None
    row.last_used_at = utcnow()
    return f"api:{row.prefix}"
