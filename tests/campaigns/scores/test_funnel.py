"""The response funnel: hand-counted on a small fixed data set, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from campaigns.scores.filters import Filters
from campaigns.scores.funnel import funnel
from campaigns.scores.periods import Period
from storage.db import Database
from storage.enums import Category, Channel, ConsentStatus, InvitationState
from storage.tables import Consent, Contact, Invitation, Response
from tests.fixtures.seeding import Seeder

SENT = datetime(2026, 5, 10, 9, tzinfo=UTC)
MAY = Period(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


def test_each_step_counts_the_cohort_due_in_the_period(db: Database) -> None:
    """pulse by SMS: 6 due in May. One still planned; of the 5 sent, 1 failed, 1 delivered only, 3 answered
    (one with a comment), and the person of one answered invitation texted STOP afterwards. pulse by email: 2
    sent, accepted by the mail server (email has no receipts), none answered. April's invitations are not in
    May's cohort."""
    seed = Seeder(db)
    pulse = seed.campaign("pulse")
    people = [seed.contact(f"P{i}", plan="pro" if i < 4 else "basic") for i in range(8)]
    with db.transaction() as session:
        for contact_id in people:
            session.execute(
                update(Contact).where(Contact.id == contact_id).values(phone=f"+1415555{contact_id:04d}")
            )
    for contact_id in people[:3]:
        seed.invitations(
            1, contact_id=contact_id, campaign_id=pulse, sent_at=SENT, delivered=True, responded=True
        )
    seed.invitations(1, contact_id=people[3], campaign_id=pulse, sent_at=SENT, delivered=True)
    seed.invitations(1, contact_id=people[4], campaign_id=pulse, sent_at=SENT, state=InvitationState.FAILED)
    seed.invitations(1, contact_id=people[5], campaign_id=pulse, sent_at=SENT, state=InvitationState.PLANNED)
    seed.invitations(2, contact_id=people[6], campaign_id=pulse, sent_at=SENT, channel=Channel.EMAIL)
    seed.invitations(3, contact_id=people[7], campaign_id=pulse, sent_at=SENT - timedelta(days=30))
    with db.transaction() as session:
        planned = session.scalars(select(Invitation).where(Invitation.state == InvitationState.PLANNED)).one()
        planned.sent_at = None
        answered = session.scalars(select(Invitation).where(Invitation.responded_at.is_not(None))).all()
        session.add(
            Response(
                invitation_id=answered[0].id,
                contact_id=answered[0].contact_id,
                campaign_id=pulse,
                channel=Channel.SMS,
                score=3,
                category=Category.DETRACTOR,
                comment="too slow",
                contact_snapshot={},
                answered_at=SENT + timedelta(hours=2),
            )
        )
        phone = session.scalar(select(Contact.phone).where(Contact.id == answered[1].contact_id))
        session.add(
            Consent(
                channel=Channel.SMS,
                address=phone,
                status=ConsentStatus.OPTED_OUT,
                source="sms:STOP",
                changed_at=SENT + timedelta(days=1),
            )
        )

    with db.transaction() as session:
        rows = funnel(session=session, period=MAY)
        assert [
            (r.campaign, r.channel, r.planned, r.sent, r.delivered, r.responded, r.commented, r.opted_out)
            for r in rows
        ] == [
            ("pulse", Channel.EMAIL, 2, 2, 2, 0, 0, 0),
            ("pulse", Channel.SMS, 6, 5, 4, 3, 1, 1),
        ]
        assert rows[1].share(rows[1].responded) == 0.6
        pro = funnel(session=session, period=MAY, filters=Filters(properties=(("plan", "pro"),)))
        assert [(r.channel, r.planned, r.responded) for r in pro] == [(Channel.SMS, 4, 3)]


def test_nps_funnel_prints_the_steps_with_their_share_of_sent(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import os

    from click.testing import CliRunner

    from service.cli import cli

    seed = Seeder(db)
    pulse = seed.campaign("pulse")
    ana = seed.contact("Ana")
    seed.invitations(4, contact_id=ana, campaign_id=pulse, sent_at=SENT, delivered=True)
    seed.invitations(1, contact_id=ana, campaign_id=pulse, sent_at=SENT, delivered=True, responded=True)
    url = db.engine.url.render_as_string(hide_password=False)

    def nps(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": url})
        assert result.exit_code == 0, result.output
        return result.output

    assert json.loads(nps("funnel", "2026-05-01..2026-05-31", "--json")) == [
        {
            "campaign": "pulse",
            "channel": "sms",
            "planned": 5,
            "sent": 5,
            "delivered": 5,
            "responded": 1,
            "commented": 0,
            "opted_out": 0,
        }
    ]
    table = nps("funnel", "2026-05-01..2026-05-31")
    assert "pulse" in table and "1 (20%)" in table and "5 (100%)" in table
