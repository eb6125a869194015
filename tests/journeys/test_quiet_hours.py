"""Legal quiet hours: a text reaches a Florida number only 08:00-20:00 its local time, and at most 3 in 24 h."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from campaigns.clock import ManualClock
from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container, build_container
from service.settings import Settings
from storage.db import Database
from storage.enums import Channel, Direction, MessagePurpose, SendState
from storage.tables import Invitation, Message
from tests.fixtures.engine import add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import FakeTwilio

LATE_WINDOW = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    timezone: America/New_York
    send_window: {days: every day, start: "07:00", end: "22:00"}
    messages:
      en: {sms: "Hi {{ first_name }}, how likely are you to recommend {{ company }}? Reply 0-10."}
"""
# A Miami number and no time zone of the contact's own: the number's zone (New York's) is the recipient's.
FLO = {"external_id": "flo", "name": "Flo Reyes", "phone": "+13052345678"}
EVENING = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)  # Monday 20:30 in Miami
NEXT_MORNING = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # Tuesday 09:00 in Miami


def due_at(engine: Container) -> datetime:
    with engine.db.transaction() as session:
        return session.scalars(select(Invitation.due_at)).one()


def test_a_florida_number_is_not_texted_at_20_30_but_is_at_9_00(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    clock.set(EVENING)
    add_contacts(engine, [FLO])
    apply_yaml(engine, LATE_WINDOW)
    plan(engine)

    assert dispatcher.drain().sent == 0
    assert fake_twilio.count() == 0
    # 09:00 in Miami, 08:00 in Pensacola: the law's opening in both of Florida's zones (the contact has none)
    assert due_at(engine) == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)

    clock.set(NEXT_MORNING)
    assert dispatcher.drain().sent == 1
    assert [m["To"] for m in fake_twilio.wait_for(1)] == ["+13052345678"]


def test_the_fourth_text_in_24_hours_to_a_florida_number_is_held(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    clock.set(NEXT_MORNING)
    add_contacts(engine, [FLO])
    apply_yaml(engine, LATE_WINDOW)
    earlier = [NEXT_MORNING - timedelta(hours=hours) for hours in (20, 18, 1)]
    with engine.db.transaction() as session:
        session.add_all(
            Message(
                direction=Direction.OUTBOUND,
                channel=Channel.SMS,
                purpose=MessagePurpose.INVITATION,
                address="+13052345678",
                body="an earlier survey",
                send_state=SendState.SENT,
                created_at=at,
                updated_at=at,
            )
            for at in earlier
        )
    plan(engine)

    assert dispatcher.drain().sent == 0
    assert fake_twilio.count() == 0
    assert due_at(engine) == earlier[0] + timedelta(hours=24)  # when the oldest of the three is a day old

    clock.set(earlier[0] + timedelta(hours=24))
    assert dispatcher.drain().sent == 1


def test_two_texts_to_one_florida_number_in_one_batch_keep_to_the_cap(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, clock: ManualClock
) -> None:
    """Two people sharing a Miami number, two texts in the last day, both due in the same batch: the batch's
    first text to the number counts against the cap when the second is prepared."""
    clock.set(NEXT_MORNING)
    earlier = two_people_sharing_flos_number_texted_twice_today(engine)

    stats = dispatcher.run_batch()
    assert (stats.claimed, stats.sent, stats.rescheduled) == (2, 1, 1)
    assert fake_twilio.count() == 1  # a fourth text in 24 hours would break Florida's cap
    with engine.db.transaction() as session:
        waiting = session.scalars(select(Invitation.due_at).where(Invitation.sent_at.is_(None))).all()
    assert waiting == [earlier[0] + timedelta(hours=24)]


@pytest.mark.postgres
def test_two_workers_preparing_texts_to_one_florida_number_at_once_keep_to_the_cap(
    empty_postgres_db: Database, engine_settings: Settings, clock: ManualClock, fake_twilio: FakeTwilio
) -> None:
    """Two people sharing a Miami number, two texts in the last day: of the two due surveys, prepared by two
    workers at the same moment, one may go and the other waits, whichever worker counts first."""
    fake_twilio.use_clock(clock.now)
    clock.set(NEXT_MORNING)
    engine = build_container(engine_settings, db=empty_postgres_db, clock=clock)
    earlier = two_people_sharing_flos_number_texted_twice_today(engine)
    config = dataclasses.replace(engine.dispatch_config(), batch_size=1)
    first, second = (
        Dispatcher(engine.db, engine.transports, clock=clock, config=config, worker_id=worker)
        for worker in ("first", "second")
    )
    main = threading.current_thread()
    other = threading.Thread(target=second.run_batch)

    def meanwhile(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        # The first worker has counted the number's texts and is about to write its own: the second prepares now.
        writes = statement.lstrip().upper().startswith("INSERT INTO MESSAGES")
        if threading.current_thread() is main and writes and other.ident is None:
            other.start()
            other.join(timeout=3)

    event.listen(engine.db.engine, "before_cursor_execute", meanwhile)
    try:
        first.run_batch()
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", meanwhile)
    other.join(timeout=30)
    first.close()
    second.close()

    assert fake_twilio.count() == 1  # a fourth text in 24 hours would break Florida's cap
    with engine.db.transaction() as session:
        waiting = session.scalars(select(Invitation.due_at).where(Invitation.sent_at.is_(None))).all()
    assert waiting == [earlier[0] + timedelta(hours=24)]


def two_people_sharing_flos_number_texted_twice_today(engine: Container) -> list[datetime]:
    """Flo and Ray share a Miami number that got two texts in the last day (when: returned), both due now."""
    add_contacts(engine, [FLO, {**FLO, "external_id": "ray", "name": "Ray Reyes"}])
    apply_yaml(engine, LATE_WINDOW)
    earlier = [NEXT_MORNING - timedelta(hours=hours) for hours in (20, 1)]
    with engine.db.transaction() as session:
        session.add_all(sent_text(at) for at in earlier)
    plan(engine)
    return earlier


def sent_text(at: datetime) -> Message:
    return Message(
        direction=Direction.OUTBOUND,
        channel=Channel.SMS,
        purpose=MessagePurpose.INVITATION,
        address=FLO["phone"],
        body="an earlier survey",
        send_state=SendState.SENT,
        created_at=at,
        updated_at=at,
    )
