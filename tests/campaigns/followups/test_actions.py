"""Acknowledge, assign and resolve: each changes a follow-up once, audits it and queues the alert's edit."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from campaigns.followups.actions import acknowledge, assign, reopen, resolve
from campaigns.followups.opening import AlertKind
from storage.db import Database
from storage.enums import AlertState, ContactMethod, FollowUpStatus
from storage.tables import AuditEntry, FollowUp, SlackAlert
from tests.fixtures.seeding import NOW, Seeder

MANAGER, AGENT, OTHER = "U0MANAGER", "U0AGENT", "U0OTHER"
LATER = NOW + timedelta(hours=2)


def follow_up(db: Database, follow_up_id: int) -> FollowUp:
    with db.transaction() as session:
        found = session.get(FollowUp, follow_up_id)
        assert found is not None
        return found


def audit_actions(db: Database) -> list[tuple[str, str]]:
    with db.transaction() as session:
        return [(a.actor, a.action) for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def alerts(db: Database) -> list[SlackAlert]:
    with db.transaction() as session:
        return list(session.scalars(select(SlackAlert).order_by(SlackAlert.id)))


def posted(db: Database) -> None:
    """The detractor alert as the poster leaves it once Slack took it."""
    with db.transaction() as session:
        session.execute(update(SlackAlert).values(state=AlertState.POSTED, ts="1700000000.000100"))


def test_acknowledging_records_who_and_when_and_queues_the_alert_edit(db: Database, seed: Seeder) -> None:
    fid = seed.detractor()
    posted(db)
    assert acknowledge(db, fid, user=MANAGER, now=LATER)
    row = follow_up(db, fid)
    assert (row.status, row.acknowledged_by, row.acknowledged_at) == (
        FollowUpStatus.ACKNOWLEDGED,
        MANAGER,
        LATER,
    )
    [alert] = alerts(db)
    assert (alert.kind, alert.state, alert.revision) == (AlertKind.DETRACTOR, AlertState.PENDING, 1)
    assert audit_actions(db) == [(f"slack:{MANAGER}", "follow_up.acknowledged")]


def test_a_second_acknowledgement_changes_nothing(db: Database, seed: Seeder) -> None:
    fid = seed.detractor()
    assert acknowledge(db, fid, user=MANAGER, now=LATER)
    assert not acknowledge(db, fid, user=OTHER, now=LATER + timedelta(minutes=1))
    assert follow_up(db, fid).acknowledged_by == MANAGER
    assert len(audit_actions(db)) == 1


def test_assigning_picks_the_case_up_and_queues_one_dm_for_the_assignee(db: Database, seed: Seeder) -> None:
    fid = seed.detractor()
    assert assign(db, fid, assignee=AGENT, by=MANAGER, now=LATER)
    assert not assign(db, fid, assignee=AGENT, by=OTHER, now=LATER)  # the same person again: nothing
    row = follow_up(db, fid)
    assert (row.assignee, row.assigned_by, row.assigned_at) == (AGENT, MANAGER, LATER)
    assert (row.status, row.acknowledged_by, row.acknowledged_at) == (
        FollowUpStatus.ACKNOWLEDGED,
        MANAGER,
        LATER,
    )
    assert [(a.kind, a.channel) for a in alerts(db)] == [
        (AlertKind.DETRACTOR, ""),
        (AlertKind.ASSIGNED, AGENT),
    ]
    assert audit_actions(db) == [(f"slack:{MANAGER}", "follow_up.assigned")]


def test_reassigning_keeps_the_first_acknowledgement_and_clears_the_reminder(
    db: Database, seed: Seeder
) -> None:
    fid = seed.detractor()
    assert acknowledge(db, fid, user=MANAGER, now=LATER)
    assert assign(db, fid, assignee=AGENT, by=MANAGER, now=LATER)
    with db.transaction() as session:
        session.execute(update(FollowUp).values(reminded_at=LATER))
    assert assign(db, fid, assignee=OTHER, by=AGENT, now=LATER + timedelta(hours=1))
    row = follow_up(db, fid)
    assert (row.assignee, row.assigned_by, row.acknowledged_by, row.reminded_at) == (
        OTHER,
        AGENT,
        MANAGER,
        None,
    )
    assert [a.channel for a in alerts(db) if a.kind == AlertKind.ASSIGNED] == [AGENT, OTHER]


def test_resolving_keeps_the_outcome_and_the_time_to_close(db: Database, seed: Seeder) -> None:
    fid = seed.detractor()
    assert resolve(
        db, fid, user=AGENT, note="  Called back, refund issued  ", method=ContactMethod.PHONE_CALL, now=LATER
    )
    row = follow_up(db, fid)
    assert (row.status, row.resolved_by, row.resolved_at) == (FollowUpStatus.RESOLVED, AGENT, LATER)
    assert (row.outcome_note, row.contact_method) == ("Called back, refund issued", "phone call")
    with db.transaction() as session:
        entry = session.scalars(select(AuditEntry)).one()
    assert entry.action == "follow_up.resolved" and entry.details == {"time_to_close_seconds": 7200}


def test_a_resolved_case_is_not_changed_by_late_clicks(db: Database, seed: Seeder) -> None:
    fid = seed.detractor()
    assert resolve(db, fid, user=AGENT, note="done", method=None, now=LATER)
    assert not resolve(db, fid, user=OTHER, note="again", method=None, now=LATER)
    assert not acknowledge(db, fid, user=OTHER, now=LATER)
    assert not assign(db, fid, assignee=OTHER, by=MANAGER, now=LATER)
    row = follow_up(db, fid)
    assert (row.resolved_by, row.outcome_note, row.acknowledged_by, row.assignee) == (
        AGENT,
        "done",
        None,
        None,
    )
    assert len(audit_actions(db)) == 1


def test_reopening_unresolves_the_case_with_a_fresh_deadline_and_is_audited(
    db: Database, seed: Seeder
) -> None:
    """Resolved after 2 hours; reopened three days later, past the first 48-hour deadline: a new one from then."""
    fid = seed.detractor()
    assert resolve(db, fid, user=AGENT, note="refund issued", method=None, now=LATER)
    reopened_at = NOW + timedelta(days=3)
    assert reopen(db, fid, user=MANAGER, now=reopened_at)
    assert not reopen(db, fid, user=MANAGER, now=reopened_at)  # open already: a double click
    row = follow_up(db, fid)
    assert (row.status, row.resolved_by, row.resolved_at) == (FollowUpStatus.ACKNOWLEDGED, None, None)
    assert (row.acknowledged_by, row.acknowledged_at) == (MANAGER, reopened_at)
    assert row.due_at == reopened_at + timedelta(hours=48)
    assert row.outcome_note == "refund issued"  # kept: what was tried before
    assert audit_actions(db)[-1] == (f"slack:{MANAGER}", "follow_up.reopened")
    assert resolve(
        db, fid, user=AGENT, note="called again", method=None, now=reopened_at + timedelta(hours=1)
    )


def test_a_follow_up_that_does_not_exist_changes_nothing(db: Database, seed: Seeder) -> None:
    assert not acknowledge(db, 4242, user=MANAGER, now=LATER)
    assert not assign(db, 4242, assignee=AGENT, by=MANAGER, now=LATER)
    assert not resolve(db, 4242, user=MANAGER, note="done", method=None, now=LATER)
    assert audit_actions(db) == []


def test_two_acknowledgements_at_once_change_the_follow_up_once(db: Database, seed: Seeder) -> None:
    """A second manager clicks while the first click's transaction is still open: the second waits for it,
    then finds the case acknowledged and changes nothing (a row lock on PostgreSQL, the write lock on SQLite)."""
    fid = seed.detractor()
    results: list[bool] = []
    with db.engine.connect() as first_click:
        first_click.begin()
        first_click.execute(
            update(FollowUp)
            .where(FollowUp.id == fid)
            .values(acknowledged_by=MANAGER, acknowledged_at=NOW, status=FollowUpStatus.ACKNOWLEDGED)
        )
        second = threading.Thread(target=lambda: results.append(acknowledge(db, fid, user=OTHER, now=LATER)))
        second.start()
        time.sleep(0.5)
        assert second.is_alive()  # waiting for the first click to commit
        first_click.commit()
    second.join(timeout=10)
    assert results == [False]
    assert follow_up(db, fid).acknowledged_by == MANAGER
    assert audit_actions(db) == []
