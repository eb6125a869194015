"""Recovery re-surveys against what happens around them: a reopening while a worker is sending the re-survey,
the campaign turning `recovery` off, a regular survey of the campaign that went out after the resolution."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.followups.actions import reopen
from service.container import Container
from storage.enums import InvitationState
from storage.tables import AuditEntry, FollowUp
from tests.campaigns.planning.test_recovery import (
    ANA,
    CAMPAIGN,
    app,
    close,
    detractor_follow_up,
    plan_recovery,
    re_surveys,
    reply,
)
from tests.fixtures.engine import add_contacts, apply_yaml, plan
from tests.standins._server import IncomingRequest, Reply
from tests.standins.fake_twilio import FakeTwilio

__all__ = ["app"]  # the fixture, used by name

BEN = {"external_id": "ben", "name": "Ben Ode", "phone": "+4915112345679"}
WEEKLY = """
  - name: weekly
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""


def one_at_a_time(engine: Container) -> Dispatcher:
    """A dispatcher sending one message after the other, so a test can act while the first is in flight."""
    return Dispatcher(
        engine.db,
        engine.transports,
        clock=engine.clock,
        config=replace(engine.dispatch_config(), concurrency=1),
        worker_id="one-at-a-time",
    )


def during_first_send(fake_twilio: FakeTwilio, action: Callable[[], None]) -> None:
    """Run `action` inside the fake Twilio's handling of the next send, before it answers."""
    answer = fake_twilio.answer
    done: list[bool] = []

    def answer_after_action(request: IncomingRequest) -> Reply:
        if request.http_method == "POST" and not done:
            done.append(True)
            action()
        return answer(request)

    fake_twilio.answer = answer_after_action  # type: ignore[method-assign]


def test_a_reopening_while_the_worker_sends_its_batch_stops_the_claimed_re_survey(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    """Ben's survey and Ana's re-survey are claimed in one batch; while Ben's text is with Twilio, Ana's case is
    reopened. The last look before Ana's send sees it: no re-survey for an open case; resolving again plans one."""
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    engine.clock.advance(days=14, hours=-1)  # type: ignore[attr-defined]
    add_contacts(engine, [BEN])
    apply_yaml(engine, CAMPAIGN.replace("INTERVAL", "90") + WEEKLY)
    assert plan(engine).planned == 1  # Ben's weekly survey, due an hour before Ana's re-survey
    engine.clock.advance(hours=1)  # type: ignore[attr-defined]

    during_first_send(fake_twilio, lambda: reopen(engine.db, follow_up, user="U0BO", now=engine.clock.now()))
    worker = one_at_a_time(engine)
    try:
        stats = worker.drain()
    finally:
        worker.close()
    assert stats.sent == 1
    assert [message.to for message in fake_twilio.messages()] == [ANA["phone"], BEN["phone"]]
    [withheld] = re_surveys(engine)
    assert withheld.state is InvitationState.CANCELLED
    assert withheld.last_error == "the follow-up was reopened before the re-survey went out"

    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    assert dispatcher.drain().sent == 1
    assert [message.to for message in fake_twilio.messages()] == [ANA["phone"], BEN["phone"], ANA["phone"]]


def test_a_reopening_and_a_new_resolution_while_the_re_survey_is_claimed_hold_it_until_after_days(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    """Reopened and resolved again while the worker holds the re-survey: it is no longer N days after the
    resolution it answers, so it does not go out minutes after the new one; the new resolution plans its own."""
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    engine.clock.advance(days=14, hours=-1)  # type: ignore[attr-defined]
    add_contacts(engine, [BEN])
    apply_yaml(engine, CAMPAIGN.replace("INTERVAL", "90") + WEEKLY)
    assert plan(engine).planned == 1
    engine.clock.advance(hours=1)  # type: ignore[attr-defined]

    def reopen_and_resolve() -> None:
        assert reopen(engine.db, follow_up, user="U0BO", now=engine.clock.now())
        assert close(engine, follow_up)

    during_first_send(fake_twilio, reopen_and_resolve)
    worker = one_at_a_time(engine)
    try:
        assert worker.drain().sent == 1
    finally:
        worker.close()
    assert [message.to for message in fake_twilio.messages()] == [ANA["phone"], BEN["phone"]]
    assert plan_recovery(engine) == 1
    [planned] = re_surveys(engine)
    assert planned.state is InvitationState.PLANNED
    assert planned.due_at == engine.clock.now() + timedelta(days=14)


def test_turning_recovery_off_cancels_the_re_surveys_still_planned(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    apply_yaml(engine, CAMPAIGN.replace("INTERVAL", "90").replace("    recovery: {after_days: 14}\n", ""))
    plan_recovery(engine)  # the planning job, a minute later
    [cancelled] = re_surveys(engine)
    assert cancelled.state is InvitationState.CANCELLED
    assert cancelled.last_error == "the campaign's recovery was turned off before the re-survey went out"
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert len(fake_twilio.messages()) == 1  # the first survey only


def test_turning_recovery_off_while_a_worker_holds_the_re_survey_stops_it(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    engine.clock.advance(days=14, hours=-1)  # type: ignore[attr-defined]
    add_contacts(engine, [BEN])
    apply_yaml(engine, CAMPAIGN.replace("INTERVAL", "90") + WEEKLY)
    assert plan(engine).planned == 1
    engine.clock.advance(hours=1)  # type: ignore[attr-defined]
    off = CAMPAIGN.replace("INTERVAL", "90").replace("    recovery: {after_days: 14}\n", "") + WEEKLY

    during_first_send(fake_twilio, lambda: apply_yaml(engine, off))
    worker = one_at_a_time(engine)
    try:
        assert worker.drain().sent == 1
    finally:
        worker.close()
    assert [message.to for message in fake_twilio.messages()] == [ANA["phone"], BEN["phone"]]
    [stopped] = re_surveys(engine)
    assert stopped.state is InvitationState.CANCELLED


def test_a_regular_survey_sent_after_the_resolution_takes_the_place_of_the_re_survey(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    """The campaign's regular survey was waiting when the case was resolved, and the dispatcher sent it before
    the planning job's next minute: that survey already asks her again; no second one two weeks later."""
    follow_up = detractor_follow_up(
        engine, dispatcher, app, interval=10, extra="    min_days_between_surveys: 0\n"
    )
    engine.clock.advance(days=10)  # type: ignore[attr-defined]
    assert plan(engine).planned == 1
    assert close(engine, follow_up)
    assert dispatcher.drain().sent == 1  # before the planning job runs again
    assert plan_recovery(engine) == 0
    [decided] = re_surveys(engine)
    assert decided.state is InvitationState.CANCELLED
    assert decided.last_error == "the campaign surveyed the person again after the resolution"
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    assert plan_recovery(engine) == 0
    dispatcher.drain()
    assert len(fake_twilio.messages()) == 2  # the first survey and the regular one


def test_a_promoters_or_passives_resolved_follow_up_plans_no_re_survey(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    """`follow_up: [detractor, passive, promoter]` opens cases for thanks too; recovery is for the unhappy (and
    `nps loop` counts only detractors): a promoter thanked is not surveyed again two weeks later."""
    add_contacts(engine, [ANA])
    extra = "    follow_up: [detractor, passive, promoter]\n"
    apply_yaml(engine, CAMPAIGN.replace("INTERVAL", "1") + extra)
    plan(engine)
    assert dispatcher.drain().sent == 1
    apply_yaml(engine, CAMPAIGN.replace("INTERVAL", "90") + extra)
    reply(app, "10")
    reply(app, "great courier")
    with engine.db.transaction() as session:
        follow_up = session.scalars(select(FollowUp.id)).one()
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 0
    assert re_surveys(engine) == []
    engine.clock.advance(days=14)  # type: ignore[attr-defined]
    dispatcher.drain()
    assert len(fake_twilio.messages()) == 1


def test_two_reopen_clicks_while_the_case_row_is_locked_reopen_it_once(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    """Both clicks wait on a lock held by another connection, then race: one reopens (and cancels the
    re-survey), the other finds the case open and changes nothing; one audit entry."""
    follow_up = detractor_follow_up(engine, dispatcher, app)
    assert close(engine, follow_up)
    assert plan_recovery(engine) == 1
    locked, results = threading.Event(), []
    release = threading.Event()

    def hold_the_row() -> None:
        with engine.db.transaction() as session:
            session.execute(
                update(FollowUp).where(FollowUp.id == follow_up).values(updated_at=FollowUp.updated_at)
            )
            locked.set()
            release.wait(5)

    def click() -> None:
        results.append(reopen(engine.db, follow_up, user="U0BO", now=engine.clock.now()))

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    locked.wait(5)
    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    time.sleep(0.3)  # both clicks are waiting on the lock
    release.set()
    for thread in [holder, *clicks]:
        thread.join()
    assert sorted(results) == [False, True]
    [cancelled] = re_surveys(engine)
    assert cancelled.state is InvitationState.CANCELLED
    with engine.db.transaction() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("follow_up.reopened") == 1
