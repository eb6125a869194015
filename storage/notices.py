"""Notices to the admin channel (SLACK_ADMIN_CHANNEL): a small outbox of plain messages about the service itself.

A subject ("channel:sms", "slack:C0ALERTS") is held or not: a paused channel, a channel Slack refuses alerts on.
`announce` queues a notice only when the subject flips, by a compare-and-set on `notice_subjects` in the caller's
transaction: two processes seeing the same change queue one notice, and a subject that stays held (a failed
probe, a retry refused again) queues nothing. The notice row is written in the same transaction as the change it
announces, so it is not lost before it is posted; `bot.notices` posts each at most once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.enums import NoticeState
from storage.tables import AdminNotice, NoticeSubject


def announce(subject: str, *, held: bool, text: str, now: datetime, session: Session) -> bool:
    """Queue `text` if `subject` was not already known to be in this state; whether it was queued.

    A subject never announced counts as not held, so its first notice is always a "held" one.
    """
    flipped = session.execute(
        update(NoticeSubject)
        .where(NoticeSubject.subject == subject, NoticeSubject.held == (not held))
        .values(held=held, changed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not flipped and held:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        # RETURNING says whether it was inserted: SQLAlchemy reports no rowcount for an INSERT on PostgreSQL.
        inserted = session.execute(
            dialect.insert(NoticeSubject)
            .values(subject=subject, held=True, changed_at=now)
            .on_conflict_do_nothing(index_elements=["subject"])
            .returning(NoticeSubject.subject)
        ).first()
        flipped = inserted is not None
    if flipped:
        session.add(
            AdminNotice(
                subject=subject,
                text=text,
                state=NoticeState.PENDING,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
    return bool(flipped)


def held_subjects(prefix: str, *, session: Session) -> set[str]:
    """The subjects starting with `prefix` that the admin channel was last told are held."""
    return set(
        session.scalars(
            select(NoticeSubject.subject).where(
                NoticeSubject.subject.startswith(prefix, autoescape=True), NoticeSubject.held.is_(True)
            )
        )
    )
