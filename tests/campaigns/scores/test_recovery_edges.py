"""The recovery share on its edge cases, counted by hand (SQLite and PostgreSQL).

c1 pulse 6 (May 1)  resolved May 2                      then 6 on May 20          -> answered, not rose
c2 pulse 3 (May 1)  resolved May 3, re-survey answered 8 May 17, reopened May 18,
                    resolved again May 22               then 5 on May 27          -> one case: answered
                                                         (5, the first answer after the last resolution), rose
c3 pulse 7 (May 1)  a passive's follow-up (follow_up includes passives), resolved, then 9 -> not counted
"""

from __future__ import annotations

from campaigns.followups.actions import reopen, resolve
from campaigns.scores.nps import categorize
from campaigns.scores.recovery import recovery_share
from storage.db import Database
from storage.enums import Channel
from storage.tables import FollowUp, Response
from tests.campaigns.scores.test_recovery import MAY, day, detractor, re_survey
from tests.fixtures.seeding import Seeder


def passive_follow_up(db: Database, contact_id: int, campaign_id: int, at_day: int) -> int:
    with db.transaction() as session:
        response = Response(
            contact_id=contact_id,
            campaign_id=campaign_id,
            channel=Channel.SMS,
            score=7,
            category=categorize(7).value,
            answered_at=day(5, at_day),
        )
        session.add(response)
        session.flush()
        follow_up = FollowUp(
            response_id=response.id,
            due_at=day(5, at_day + 5),
            created_at=day(5, at_day),
            updated_at=day(5, at_day),
        )
        session.add(follow_up)
        session.flush()
        return follow_up.id


def test_the_share_on_edge_cases(db: Database) -> None:
    seed = Seeder(db)
    pulse = seed.campaign("pulse")
    c1, c2, c3 = (seed.contact() for _ in range(3))

    f1 = detractor(db, c1, pulse, 6, day(5, 1))
    assert resolve(db, f1, user="U0ANA", note="called", method=None, now=day(5, 2))
    seed.responses([6], at=day(5, 20), contact_id=c1, campaign_id=pulse)

    f2 = detractor(db, c2, pulse, 3, day(5, 1))
    assert resolve(db, f2, user="U0ANA", note="called", method=None, now=day(5, 3))
    re_survey(db, f2, c2, pulse, day(5, 17))
    seed.responses([8], at=day(5, 17), contact_id=c2, campaign_id=pulse)
    assert reopen(db, f2, user="U0ANA", now=day(5, 18))
    assert resolve(db, f2, user="U0ANA", note="called again", method=None, now=day(5, 22))
    seed.responses([5], at=day(5, 27), contact_id=c2, campaign_id=pulse)

    f3 = passive_follow_up(db, c3, pulse, 1)
    assert resolve(db, f3, user="U0ANA", note="called", method=None, now=day(5, 2))
    seed.responses([9], at=day(5, 10), contact_id=c3, campaign_id=pulse)

    with db.transaction() as session:
        overall = recovery_share(session=session, period=MAY).overall
    counts = (overall.resolved, overall.planned, overall.re_surveyed, overall.answered, overall.rose)
    assert counts == (2, 0, 1, 2, 1)
    assert overall.share == 0.5
