"""Recording why a campaign skipped a contact: one counted row per campaign, contact and reason."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.planning.eligibility import Skip as SkipDecision
from storage.tables import Skip


def record_skip(
    campaign_id: int, contact_id: int, skip: SkipDecision, *, at: datetime, session: Session
) -> None:
    record_skips([(campaign_id, contact_id, skip)], at=at, session=session)


def record_skips(skips: Sequence[tuple[int, int, SkipDecision]], *, at: datetime, session: Session) -> None:
    """Record (campaign id, contact id, skip) triples in one statement: a planning chunk's skips at once.

    Each triple at most once per call (one campaign skips one contact once per pass).
    """
    if not skips:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # On the table, not the mapped class: one executemany, without the ORM's bulk bookkeeping per row (a
    # tenth of a planner's time over a large base with many skips).
    statement = dialect.insert(Skip.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["campaign_id", "contact_id", "reason"],
        set_={
            "detail": statement.excluded.detail,
            "last_at": statement.excluded.last_at,
            "count": Skip.__table__.c.count + 1,
        },
    )
    rows = [
        {
            "campaign_id": campaign_id,
            "contact_id": contact_id,
            "reason": skip.reason,
            "detail": skip.detail,
            "first_at": at,
            "last_at": at,
            "count": 1,
        }
        for campaign_id, contact_id, skip in skips
    ]
    session.execute(statement, rows)


def skips_for_contact(contact_id: int, *, session: Session) -> list[Skip]:
    return list(
        session.scalars(select(Skip).where(Skip.contact_id == contact_id).order_by(Skip.last_at.desc()))
    )
