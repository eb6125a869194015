"""Recovery re-surveys end to end: a detractor answers by SMS, the follow-up is resolved, and `after_days` later
the fake Twilio receives the re-survey, once, through the normal dispatch path (opt-outs, send window)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.followups.actions import reopen, resolve
from campaigns.planning.recovery import plan_recoveries
from service.container import Container
from service.web.app import create_app
from storage.enums import FollowUpStatus, InvitationState
from storage.tables import FollowUp, Invitation, Skip
from tests.fixtures.engine import FROM_NUMBER, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: INTERVAL
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
    recovery: {after_days: 14}
"""
ANA = {"external_id": "ana", "name": "Ana Lima", "phone": "+4915112345678"}
SMS_URL = "https://nps.example.com/twilio/sms"


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        yield client


def reply(app: TestClient, body: str) -> None:
    params = inbound_sms_params(ANA["phone"], FROM_NUMBER, body, None)
    assert post_signed(app, SMS_URL, params, DEFAULT_AUTH_TOKEN).status_code == 200


def detractor_follow_up(
    engine: Container, dispatcher: Dispatcher, app: TestClient, *, interval: int = 90, extra: str = ""
) -> int:
    """Ana is surveyed by SMS and answers 3: the id of the follow-up her answer opened."""
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN.replace("INTERVAL", "1") + extra)  # the first survey due today, not spread
    plan(engine)
    assert dispatcher.drain().sent == 1
    apply_yaml(engine, CAMPAIGN.replace("INTERVAL", str(interval)) + extra)
    reply(app, "3")
    reply(app, "the courier was rude")
    with engine.db.transaction() as session:
        return session.scalars(select(FollowUp.id)).one()


def close(engine: Container, follow_up_id: int) -> bool:
    return resolve(
        engine.db, follow_up_id, user="U0ANA", note="called her", method=None, now=engine.clock.now()
    )


def plan_recovery(engine: Container) -> int:
    return plan_recoveries(engine.db, now=engine.clock.now(), rules=engine.planning_rules).planned


def re_surveys(engine: Container) -> list[Invitation]:
    with engine.db.transaction() as session:
        rows = session.scalars(select(Invitation).where(Invitation.recovery_of_follow_up_id.is_not(None)))
        return list(rows)


def test_the_re_survey_goes_out_after_days_after_the_resolution_despite_the_fatigue_rule(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    follow_up = detractor_follow_up(engine, dispatcher, app)
    resolved_at = engine.clock.now()
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    [re_survey] = re_surveys(engine)
    assert re_survey.recovery_of_follow_up_id == follow_up
    assert re_survey.state is InvitationState.PLANNED and re_survey.due_at == resolved_at + timedelta(days=14)

    engine.clock.advance(days=13)  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 0
    engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert (
        dispatcher.drain().sent == 1
    )  # 14 days after the first survey: the 90-day fatigue rule does not apply
    _first, second = fake_twilio.messages()
    assert second.to == ANA["phone"] and "recommend" in second.body
    assert plan_recovery(engine) == 0  # planned once, sent once
    assert len(re_surveys(engine)) == 1


def test_resolving_twice_and_planning_again_plan_one_re_survey(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    assert not close(engine, follow_up)  # a double click: already resolved
    assert plan_recovery(engine) == 1
    assert plan_recovery(engine) == 0
    assert len(re_surveys(engine)) == 1


def test_two_planners_at_once_plan_one_re_survey(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    start = threading.Barrier(2)
    planned: list[int] = []

    def planner() -> None:
        start.wait()
        planned.append(plan_recovery(engine))

    threads = [threading.Thread(target=planner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(planned) == [0, 1]
    assert len(re_surveys(engine)) == 1


def test_the_schema_refuses_a_second_re_survey_of_one_follow_up(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    """What keeps two planners that both found no re-survey yet from writing two."""
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    [first] = re_surveys(engine)
    with pytest.raises(IntegrityError), engine.db.transaction() as session:
        session.add(
            Invitation(
                contact_id=first.contact_id,
                campaign_id=first.campaign_id,
                state=InvitationState.CANCELLED,
                due_at=first.due_at,
                token="another-token",
                recovery_of_follow_up_id=follow_up,
            )
        )


def test_reopening_before_it_is_sent_cancels_the_re_survey_and_resolving_again_plans_it_once(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    assert reopen(engine.db, follow_up, user="U0BO", now=engine.clock.now())
    assert not reopen(engine.db, follow_up, user="U0BO", now=engine.clock.now())  # open already
    [cancelled] = re_surveys(engine)
    assert cancelled.state is InvitationState.CANCELLED
    assert plan_recovery(engine) == 0  # open again: nothing to re-survey
    with engine.db.transaction() as session:
        assert session.get(FollowUp, follow_up).status == "acknowledged"  # type: ignore[union-attr]

    engine.clock.advance(days=2)  # type: ignore[attr-defined]
    second_resolution = engine.clock.now()
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    [again] = re_surveys(engine)
    assert again.state is InvitationState.PLANNED
    assert again.due_at == second_resolution + timedelta(days=14)

    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 1
    assert len(fake_twilio.messages()) == 2  # the first survey and one re-survey


def test_reopening_after_the_re_survey_went_out_changes_nothing_sent(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    plan_recovery(engine)
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 1
    assert reopen(engine.db, follow_up, user="U0BO", now=engine.clock.now())
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 0
    [sent] = re_surveys(engine)
    assert sent.state is InvitationState.SENT
    assert len(fake_twilio.messages()) == 2


def test_an_opt_out_before_the_re_survey_is_planned_is_respected(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    follow_up = detractor_follow_up(engine, dispatcher, app)
    reply(app, "STOP")
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 0
    [skipped] = re_surveys(engine)  # marked, so it is decided once
    assert skipped.state is InvitationState.CANCELLED
    with engine.db.transaction() as session:
        assert session.scalars(select(Skip.reason)).all() == ["no_channel"]
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert len(fake_twilio.messages()) == 1


def test_an_opt_out_after_the_re_survey_is_planned_is_respected(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    reply(app, "STOP")
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 0
    assert len(fake_twilio.messages()) == 1
    [cancelled] = re_surveys(engine)
    assert cancelled.state is InvitationState.CANCELLED


def test_the_re_survey_replaces_a_regular_survey_waiting_to_go_out_and_the_interval_counts_from_it(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    """A campaign surveying every 10 days with its own fatigue window of 0: its next regular survey would come
    during the 14 days; the re-survey takes its place and the next regular one is due 10 days after it."""
    follow_up = detractor_follow_up(
        engine, dispatcher, app, interval=10, extra="    min_days_between_surveys: 0\n"
    )
    engine.clock.advance(days=10)  # type: ignore[attr-defined]
    assert plan(engine).planned == 1  # the regular survey, waiting for the dispatcher
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    with engine.db.transaction() as session:
        states = session.execute(
            select(Invitation.recovery_of_follow_up_id, Invitation.state, Invitation.last_error).order_by(
                Invitation.id
            )
        ).all()
    assert [(row[0], row[1]) for row in states] == [
        (None, InvitationState.RESPONDED),
        (None, InvitationState.CANCELLED),
        (follow_up, InvitationState.PLANNED),
    ]
    assert states[1][2] == f"replaced by the recovery re-survey of follow-up {follow_up}"
    assert plan(engine).planned == 0  # the re-survey is pending: no regular survey meanwhile
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 1
    engine.clock.advance(days=9)  # type: ignore[attr-defined]
    assert plan(engine).planned == 0
    engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert plan(engine).planned == 1


def test_the_follow_up_of_an_answer_to_the_re_survey_is_not_re_surveyed_again(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 1
    reply(app, "4")  # still unhappy: a second follow-up
    reply(app, "no change")
    with engine.db.transaction() as session:
        first, second = session.scalars(select(FollowUp.id).order_by(FollowUp.id)).all()
    assert first == follow_up
    assert close(engine, second)
    assert plan_recovery(engine) == 0
    assert len(re_surveys(engine)) == 1


def test_the_scheduler_plans_re_surveys_with_the_other_invitations(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    from service.scheduler import Ticker

    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    ticker = Ticker(engine, holder="recovery-test")
    try:
        ticker.plan()
    finally:
        ticker.dispatcher.close()
    [planned] = re_surveys(engine)
    assert planned.recovery_of_follow_up_id == follow_up


def test_a_reopening_that_commits_while_the_planner_runs_leaves_no_re_survey(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    """The planner read the case as resolved; a reopening holds the row and commits a moment later. The
    planner waits for it and plans nothing, instead of a re-survey for an open case."""
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    holding, planned = threading.Event(), []

    def reopening() -> None:
        with engine.db.transaction() as session:
            session.execute(
                update(FollowUp)
                .where(FollowUp.id == follow_up)
                .values(status=FollowUpStatus.ACKNOWLEDGED, resolved_at=None, resolved_by=None)
            )
            holding.set()
            time.sleep(0.5)

    other = threading.Thread(target=reopening)
    other.start()
    holding.wait()
    planned.append(plan_recovery(engine))
    other.join()
    assert planned == [0]
    assert re_surveys(engine) == []
