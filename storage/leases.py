"""Named leases: at most one holder at a time, taken over only when the holder stops renewing."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.tables import Lease


def acquire_or_renew(db: Database, name: str, holder: str, *, now: datetime, ttl: timedelta) -> bool:
    """True when `holder` holds the lease until now + ttl; False when someone else holds a live one."""
    try:
        with db.transaction() as session:
            lease = session.scalar(select(Lease).where(Lease.name == name).with_for_update())
            if lease is None:
                session.add(Lease(name=name, holder=holder, expires_at=now + ttl))
                return True
            if lease.holder != holder and lease.expires_at > now:
                return False
            lease.holder, lease.expires_at = holder, now + ttl
            return True
    except IntegrityError:
        return False  # another process inserted it first


def release(db: Database, name: str, holder: str) -> None:
    with db.transaction() as session:
        lease = session.scalar(select(Lease).where(Lease.name == name, Lease.holder == holder))
        if lease is not None:
            session.delete(lease)
