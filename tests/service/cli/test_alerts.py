"""`nps alerts` and `nps alerts retry`, as an operator runs them."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from click.testing import CliRunner, Result
from sqlalchemy import select

from service.cli import cli
from storage.db import Database
from storage.enums import AlertKind, AlertState
from storage.tables import SlackAlert

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def nps(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": database_url})


HELD = "held"  # a pending alert waiting on a broken channel


def stored(db: Database, *rows: tuple[AlertState | str, str | None]) -> list[int]:
    with db.transaction() as session:
        alerts = [
            SlackAlert(
                kind=AlertKind.DETRACTOR,
                channel="C0ALERTS",
                state=AlertState.PENDING if state == HELD else state,
                held_channel="C0ALERTS" if state == HELD else None,
                last_error=reason,
                attempts=2,
                next_attempt_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
            for state, reason in rows
        ]
        session.add_all(alerts)
        session.flush()
        return [a.id for a in alerts]


def states(db: Database) -> list[AlertState]:
    with db.transaction() as session:
        return list(session.scalars(select(SlackAlert.state).order_by(SlackAlert.id)))


def test_alerts_lists_failed_held_and_review_alerts_with_their_reason(
    database_url: str, db: Database
) -> None:
    failed, held, review, _posted = stored(
        db,
        (AlertState.FAILED, "Slack answered 200 invalid_blocks"),
        (HELD, "Slack answered 200 not_in_channel"),
        (AlertState.REVIEW, "posted or not: conversations.history answered missing_scope"),
        (AlertState.POSTED, None),
    )
    result = nps(database_url, "alerts")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4  # a header and the three that need someone
    assert lines[1].split()[:4] == [str(failed), "failed", "detractor", "C0ALERTS"]
    assert "invalid_blocks" in lines[1]
    assert lines[2].split()[:2] == [str(held), "held"] and "not_in_channel" in lines[2]
    assert lines[3].split()[:2] == [str(review), "review"] and "missing_scope" in lines[3]


def test_alerts_says_so_when_nothing_needs_attention(database_url: str, db: Database) -> None:
    stored(db, (AlertState.POSTED, None))
    result = nps(database_url, "alerts")
    assert result.exit_code == 0 and result.stdout.strip() == "No failed, held or review alerts."


def test_retry_queues_the_named_alerts_again(database_url: str, db: Database) -> None:
    failed, review, _other = stored(
        db, (AlertState.FAILED, "x"), (AlertState.REVIEW, "y"), (AlertState.FAILED, "z")
    )
    result = nps(database_url, "alerts", "retry", str(failed), str(review))
    assert result.exit_code == 0, result.output
    assert states(db) == [AlertState.PENDING, AlertState.PENDING, AlertState.FAILED]
    assert "2 alerts queued again" in result.stdout
    with db.transaction() as session:
        first = session.get(SlackAlert, failed)
        assert first is not None and first.attempts == 0


def test_retry_all_and_an_alert_that_is_not_waiting(database_url: str, db: Database) -> None:
    _failed, _held, posted = stored(db, (AlertState.FAILED, "x"), (HELD, "y"), (AlertState.POSTED, None))
    refused = nps(database_url, "alerts", "retry", str(posted))
    assert refused.exit_code == 1 and f"alert {posted} is posted" in refused.stderr
    assert nps(database_url, "alerts", "retry").exit_code == 2  # names or --all
    result = nps(database_url, "alerts", "retry", "--all")
    assert result.exit_code == 0 and "2 alerts queued again" in result.stdout
    assert states(db) == [AlertState.PENDING, AlertState.PENDING, AlertState.POSTED]
