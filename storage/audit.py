"""The audit trail: who did what to which record."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from storage.enums import AuditAction, AuditEntity
from storage.tables import AuditEntry


def record_audit(
    *,
    session: Session,
    actor: str,
    action: AuditAction,
    entity_type: AuditEntity,
    entity_id: object = None,
    **details: Any,
) -> None:
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=None if entity_id is None else str(entity_id),
            details=details,
        )
    )
