from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from storage.db import Database, alembic_config, current_revision, upgrade
from storage.enums import CampaignKind, Category, Channel, Direction, MessagePurpose, SendState
from storage.migrations_state import head_revision
from storage.tables import Base, Campaign, Contact, Invitation, Message, Response

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_the_database_is_at_the_newest_revision(db: Database) -> None:
    assert current_revision(db.engine) == head_revision()


def test_upgrade_again_changes_nothing(db: Database) -> None:
    upgrade(db.engine)
    assert current_revision(db.engine) == head_revision()


def test_the_models_match_the_migrations(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_and_back_up(sqlite_db: Database) -> None:
    config = alembic_config(sqlite_db.engine)
    command.downgrade(config, "base")
    assert current_revision(sqlite_db.engine) is None
    upgrade(sqlite_db.engine)
    assert current_revision(sqlite_db.engine) == head_revision()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


# Rows as revision 0004 stored them: (direction, purpose, provider id, status).
_OLD_MESSAGES = [
    ("outbound", "invitation", None, "sending"),
    ("outbound", "invitation", "SM1", "sent"),
    ("outbound", "invitation", None, "rejected"),
    ("outbound", "invitation", None, "failed"),  # ours: a temporary error, nothing went out
    ("outbound", "invitation", None, "unknown"),
    ("outbound", "invitation", None, "not_sent"),
    ("outbound", "reminder", "SM2", "delivered"),
    ("outbound", "invitation", "SM3", "undelivered"),
    ("outbound", "invitation", "SM4", "failed"),  # Twilio's: a callback after it was accepted
    ("outbound", "invitation", "SM5", "sending"),  # Twilio's: a callback after it was accepted
    ("outbound", "conversation", None, "twiml"),
    ("inbound", "reply", "SM6", "received"),
    ("inbound", "reply", "SM7", "processed"),
    ("inbound", "status", None, "held"),
    ("inbound", "status", None, "applied"),
]
_SPLIT = [
    ("sending", None, None),
    ("sent", None, None),
    ("rejected", None, None),
    ("failed", None, None),
    ("unknown", None, None),
    ("not_sent", None, None),
    ("sent", "delivered", None),
    ("sent", "undelivered", None),
    ("sent", "failed", None),
    ("sent", "sending", None),
    ("twiml", None, None),
    (None, None, "received"),
    (None, None, "processed"),
    (None, None, "received"),
    (None, None, "processed"),
]


def _insert_old_messages(connection: Connection) -> None:
    for direction, purpose, provider_id, status in _OLD_MESSAGES:
        connection.execute(
            text(
                "INSERT INTO messages (direction, channel, purpose, address, provider_id, status, "
                "created_at, updated_at) VALUES (:direction, 'sms', :purpose, '+4915112345678', :provider_id, "
                ":status, '2026-11-23 10:00:00', '2026-11-23 10:00:00')"
            ),
            {"direction": direction, "purpose": purpose, "provider_id": provider_id, "status": status},
        )


def test_splitting_the_message_status_moves_every_value_to_its_vocabulary_and_back(
    own_db: Database,
) -> None:
    config = alembic_config(own_db.engine)
    command.downgrade(config, "0004_alert_revision")
    with own_db.engine.begin() as connection:
        _insert_old_messages(connection)
    upgrade(own_db.engine)
    with own_db.engine.connect() as connection:
        split = connection.execute(
            text("SELECT send_state, delivery_status, inbound_state FROM messages ORDER BY id")
        ).all()
    assert [tuple(row) for row in split] == _SPLIT

    command.downgrade(config, "0004_alert_revision")
    with own_db.engine.connect() as connection:
        statuses = connection.execute(text("SELECT status FROM messages ORDER BY id")).scalars().all()
    # Twilio's "failed" and "sending" come back as they were; so does everything else.
    assert statuses == [status for *_, status in _OLD_MESSAGES]


def test_audit_actions_of_the_command_line_take_the_shared_spelling_and_back(own_db: Database) -> None:
    config = alembic_config(own_db.engine)
    command.downgrade(config, "0005_message_vocabularies")
    rows = [("cli", "campaign.paused"), ("cli", "campaign.active"), ("slack:U1", "campaign.pause")]
    with own_db.engine.begin() as connection:
        for actor, action in rows:
            connection.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, entity_type, entity_id, details) "
                    "VALUES ('2026-01-01 00:00:00.000000', :actor, :action, 'campaign', 'pulse', '{}')"
                ),
                {"actor": actor, "action": action},
            )
    upgrade(own_db.engine)
    with own_db.engine.connect() as connection:
        actions = connection.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
    assert actions == ["campaign.pause", "campaign.resume", "campaign.pause"]
    command.downgrade(config, "0005_message_vocabularies")
    with own_db.engine.connect() as connection:
        actions = connection.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
    assert actions == ["campaign.paused", "campaign.active", "campaign.pause"]


def _linked(db: Database) -> tuple[int, int]:
    with db.engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT (SELECT count(invitation_id) FROM messages), (SELECT count(invitation_id) FROM responses)"
            )
        ).one()
    return int(row[0]), int(row[1])


def test_a_migration_that_rebuilds_a_table_on_sqlite_keeps_the_rows_that_point_at_it(
    sqlite_db: Database,
) -> None:
    """SQLite's batch mode rebuilds a table (a new copy, DROP, rename); with foreign keys enforced the DROP would
    set every message's and answer's invitation to NULL (ON DELETE SET NULL), so migrations run without them."""
    with sqlite_db.transaction() as session:
        contact = Contact(external_id="ana", phone="+4915112345678")
        campaign = Campaign(name="pulse", kind=CampaignKind.RELATIONSHIP)
        session.add_all([contact, campaign])
        session.flush()
        invitation = Invitation(
            contact_id=contact.id, campaign_id=campaign.id, channel=Channel.SMS, due_at=NOON, token="t1"
        )
        session.add(invitation)
        session.flush()
        session.add(
            Message(
                direction=Direction.OUTBOUND,
                channel=Channel.SMS,
                purpose=MessagePurpose.INVITATION,
                invitation_id=invitation.id,
                address="+4915112345678",
                body="How likely...",
                send_state=SendState.SENT,
            )
        )
        session.add(
            Response(
                invitation_id=invitation.id,
                contact_id=contact.id,
                campaign_id=campaign.id,
                channel=Channel.SMS,
                score=9,
                category=Category.PROMOTER,
                answered_at=NOON,
            )
        )
    assert _linked(sqlite_db) == (1, 1)
    command.downgrade(alembic_config(sqlite_db.engine), "0004_alert_revision")  # rebuilds `invitations`
    assert _linked(sqlite_db) == (1, 1)
    upgrade(sqlite_db.engine)
    assert _linked(sqlite_db) == (1, 1)
    with sqlite_db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # enforced again afterwards


def test_one_pending_invitation_keeps_the_claimed_or_oldest_and_cancels_the_others(
    own_db: Database,
) -> None:
    config = alembic_config(own_db.engine)
    command.downgrade(config, "0006_audit_vocabularies")
    at = "'2026-01-01 00:00:00.000000'"
    with own_db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO contacts (id, external_id, locale, properties, created_at, updated_at) "
                f"VALUES (1, 'ana', 'en', '{{}}', {at}, {at}), (2, 'ben', 'en', '{{}}', {at}, {at})"
            )
        )
        connection.execute(
            text(
                "INSERT INTO campaigns (id, name, kind, status, definition, created_at, updated_at) "
                f"VALUES (1, 'pulse', 'relationship', 'active', '{{}}', {at}, {at})"
            )
        )
        for id_, contact, state in [
            (1, 1, "planned"),
            (2, 1, "claimed"),
            (3, 1, "planned"),
            (4, 2, "planned"),
            (5, 2, "sent"),
            (6, 2, "planned"),
        ]:
            connection.execute(
                text(
                    "INSERT INTO invitations (id, contact_id, campaign_id, state, due_at, attempts, token, "
                    f"created_at, updated_at) VALUES ({id_}, {contact}, 1, '{state}', {at}, 0, 't{id_}', {at}, {at})"
                )
            )
    upgrade(own_db.engine)
    with own_db.engine.connect() as connection:
        states = connection.execute(text("SELECT state FROM invitations ORDER BY id")).scalars().all()
    assert states == ["cancelled", "claimed", "cancelled", "planned", "sent", "cancelled"]
    with pytest.raises(IntegrityError), own_db.engine.begin() as connection:
        connection.execute(text("UPDATE invitations SET state = 'planned' WHERE id = 1"))


def test_a_late_answer_downgrades_to_the_twiml_answer_the_older_code_knows(own_db: Database) -> None:
    with own_db.transaction() as session:
        for state in (SendState.LATE_TWIML, SendState.TWIML, SendState.SENDING):
            session.add(
                Message(
                    direction=Direction.OUTBOUND,
                    channel=Channel.SMS,
                    purpose=MessagePurpose.CONVERSATION,
                    address="+4915112345678",
                    body="Thanks! What is the main reason for your score?",
                    send_state=state,
                    created_at=NOON,
                    updated_at=NOON,
                )
            )
    command.downgrade(alembic_config(own_db.engine), "0011_admin_notices")
    with own_db.engine.connect() as connection:
        states = connection.execute(text("SELECT send_state FROM messages ORDER BY id")).scalars().all()
    assert states == ["twiml", "twiml", "sending"]
    upgrade(own_db.engine)
    assert current_revision(own_db.engine) == head_revision()


def test_recovery_surveys_upgrade_keeps_invitations_and_downgrade_drops_the_column(own_db: Database) -> None:
    """0019 adds `invitations.recovery_of_follow_up_id`, null for what was stored before and unique."""
    config = alembic_config(own_db.engine)
    command.downgrade(config, "0018_sms_links_and_tests")
    with own_db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO contacts (id, external_id, properties, created_at, updated_at, test) VALUES (1, 'ana', '{}', :at, :at, false)"
            ),
            {"at": NOON},
        )
        connection.execute(
            text(
                "INSERT INTO campaigns (id, name, kind, status, definition, created_at, updated_at) VALUES (1, 'pulse', 'relationship', 'active', '{}', :at, :at)"
            ),
            {"at": NOON},
        )
        connection.execute(
            text(
                "INSERT INTO invitations (contact_id, campaign_id, state, due_at, attempts, token, created_at, updated_at) VALUES (1, 1, 'sent', :at, 1, 't1', :at, :at)"
            ),
            {"at": NOON},
        )
    upgrade(own_db.engine)
    with own_db.engine.connect() as connection:
        kept = connection.execute(text("SELECT token, recovery_of_follow_up_id FROM invitations")).all()
    assert [tuple(row) for row in kept] == [("t1", None)]
    command.downgrade(config, "0018_sms_links_and_tests")
    with own_db.engine.connect() as connection:
        columns = connection.execute(text("SELECT * FROM invitations")).keys()
        assert "recovery_of_follow_up_id" not in columns
        assert connection.execute(text("SELECT token FROM invitations")).scalars().all() == ["t1"]
    upgrade(own_db.engine)
    assert current_revision(own_db.engine) == head_revision()
