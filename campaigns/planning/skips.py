"""Recording why a campaign skipped a contact: one counted row per campaign, contact and reason."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.planning.eligibility import Skip as SkipDecision
from storage.tables import Skip


def record_skip(
    campaign_id: int, contact_id: int, skip: SkipDecision, *, at: datetime, session: Session
) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Skip).values(
        campaign_id=campaign_id,
        contact_id=contact_id,
        reason=skip.reason,
        detail=skip.detail,
        first_at=at,
        last_at=at,
        count=1,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["campaign_id", "contact_id", "reason"],
            set_={"detail": skip.detail, "last_at": at, "count": Skip.count + 1},
        )
    )


def skips_for_contact(contact_id: int, *, session: Session) -> list[Skip]:
    return list(
        session.scalars(select(Skip).where(Skip.contact_id == contact_id).order_by(Skip.last_at.desc()))
    )
