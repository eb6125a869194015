"""The recovery share of `nps loop`: hand-counted on seven detractors, on SQLite and PostgreSQL.

Cohort: detractors whose follow-up was resolved in May. "Answered" means the first answer to the same campaign
after the resolution (the re-survey or any later survey of it); "rose" that its score is above the detractor's.

    c1 pulse  2 (May 1)  resolved May 3   re-survey sent May 17, answered 8 (then 1 on May 28)  -> answered, rose
    c2 pulse  5 (May 2)  resolved May 4   re-survey sent May 18, answered 4                    -> answered
    c3 pulse  0 (May 5)  resolved May 6   re-survey sent May 20, no answer                     -> re-surveyed only
    c4 pulse  6 (May 6)  resolved May 7   no re-survey (opted out); 1 before the resolution,
                                          10 to onboarding (another campaign), 9 on May 25    -> answered, rose
    c5 pulse  3 (Apr 20) resolved Apr 28  answered 9 in May                                 -> not in May's cohort
    c6 pulse  4 (May 8)  still open       answered 10 in May                                -> not resolved
    c7 pulse  1 (May 29) resolved May 30  re-survey planned for June 13                     -> planned
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from campaigns.followups.actions import resolve
from campaigns.followups.opening import on_score
from campaigns.scores.filters import Filters
from campaigns.scores.nps import categorize
from campaigns.scores.periods import Period
from campaigns.scores.recovery import recovery_share
from service.cli import cli
from storage.db import Database
from storage.enums import Channel, InvitationState
from storage.tables import FollowUp, Invitation, Response
from tests.fixtures.seeding import Seeder

MAY = Period(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


def day(month: int, number: int) -> datetime:
    return datetime(2026, month, number, 10, tzinfo=UTC)


def detractor(db: Database, contact_id: int, campaign_id: int, score: int, at: datetime) -> int:
    with db.transaction() as session:
        response = Response(
            contact_id=contact_id,
            campaign_id=campaign_id,
            channel=Channel.SMS,
            score=score,
            category=categorize(score).value,
            answered_at=at,
        )
        session.add(response)
        session.flush()
        on_score(response, now=at, session=session)
        session.flush()
        return session.query(FollowUp.id).filter(FollowUp.response_id == response.id).scalar()  # type: ignore[no-any-return]


def re_survey(
    db: Database, follow_up: int, contact_id: int, campaign_id: int, due: datetime, *, sent: bool = True
) -> None:
    with db.transaction() as session:
        session.add(
            Invitation(
                contact_id=contact_id,
                campaign_id=campaign_id,
                channel=Channel.SMS,
                state=InvitationState.SENT if sent else InvitationState.PLANNED,
                due_at=due,
                sent_at=due if sent else None,
                token=f"recovery-{follow_up}",
                recovery_of_follow_up_id=follow_up,
            )
        )


def seven_detractors(db: Database) -> None:
    seed = Seeder(db)
    pulse, onboarding = seed.campaign("pulse"), seed.campaign("onboarding")
    c1, c2, c3, c4, c5, c6, c7 = (seed.contact() for _ in range(7))

    def closed(contact: int, score: int, answered: datetime, resolved: datetime) -> int:
        follow_up = detractor(db, contact, pulse, score, answered)
        assert resolve(db, follow_up, user="U0ANA", note="called", method=None, now=resolved)
        return follow_up

    f1 = closed(c1, 2, day(5, 1), day(5, 3))
    re_survey(db, f1, c1, pulse, day(5, 17))
    seed.responses([8], at=day(5, 17), contact_id=c1, campaign_id=pulse)
    seed.responses([1], at=day(5, 28), contact_id=c1, campaign_id=pulse)
    f2 = closed(c2, 5, day(5, 2), day(5, 4))
    re_survey(db, f2, c2, pulse, day(5, 18))
    seed.responses([4], at=day(5, 18), contact_id=c2, campaign_id=pulse)
    f3 = closed(c3, 0, day(5, 5), day(5, 6))
    re_survey(db, f3, c3, pulse, day(5, 20))
    closed(c4, 6, day(5, 6), day(5, 7))
    seed.responses([1], at=day(5, 6) + timedelta(hours=2), contact_id=c4, campaign_id=pulse)
    seed.responses([10], at=day(5, 10), contact_id=c4, campaign_id=onboarding)
    seed.responses([9], at=day(5, 25), contact_id=c4, campaign_id=pulse)
    closed(c5, 3, day(4, 20), day(4, 28))
    seed.responses([9], at=day(5, 12), contact_id=c5, campaign_id=pulse)
    detractor(db, c6, pulse, 4, day(5, 8))
    seed.responses([10], at=day(5, 20), contact_id=c6, campaign_id=pulse)
    f7 = closed(c7, 1, day(5, 29), day(5, 30))
    re_survey(db, f7, c7, pulse, day(6, 13), sent=False)


def test_recovery_share_of_may(db: Database) -> None:
    seven_detractors(db)
    with db.transaction() as session:
        report = recovery_share(session=session, period=MAY)
    overall = report.overall
    counts = (overall.resolved, overall.planned, overall.re_surveyed, overall.answered, overall.rose)
    assert counts == (5, 1, 3, 3, 2)
    assert overall.share == 2 / 3
    assert [(r.group, r.resolved, r.rose) for r in report.by_campaign] == [("pulse", 5, 2)]


def test_recovery_share_follows_the_filters(db: Database) -> None:
    seven_detractors(db)
    with db.transaction() as session:
        other = recovery_share(session=session, period=MAY, filters=Filters(campaign="onboarding")).overall
        april = recovery_share(
            session=session, period=Period(datetime(2026, 4, 1, tzinfo=UTC), MAY.start)
        ).overall
    assert (other.resolved, other.answered, other.share) == (0, 0, None)
    assert (april.resolved, april.answered, april.rose) == (1, 1, 1)  # c5: 3, then 9


def test_nps_loop_shows_the_recovery_share(db: Database) -> None:
    seven_detractors(db)
    url = db.engine.url.render_as_string(hide_password=False)
    env = {"DATABASE_URL": url}
    result = CliRunner().invoke(
        cli, ["--env-file", os.devnull, "loop", "2026-05-01..2026-05-31", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["recovery"] == {
        "overall": {
            "group": "all",
            "resolved": 5,
            "re_survey_planned": 1,
            "re_surveyed": 3,
            "answered": 3,
            "rose": 2,
            "share": 0.667,
        },
        "by_campaign": [
            {
                "group": "pulse",
                "resolved": 5,
                "re_survey_planned": 1,
                "re_surveyed": 3,
                "answered": 3,
                "rose": 2,
                "share": 0.667,
            }
        ],
    }
    table = CliRunner().invoke(cli, ["--env-file", os.devnull, "loop", "2026-05-01..2026-05-31"], env=env)
    assert table.exit_code == 0, table.output
    assert "Recovery" in table.output
    assert "2 of 3 (67%)" in table.output
