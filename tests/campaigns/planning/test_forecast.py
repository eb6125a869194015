"""`nps campaigns list`'s planned counts: what the planner will send today and in the next seven days."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.planning.forecast import forecast
from service.container import Container
from storage.tables import Campaign, Invitation
from tests.fixtures.engine import add_contacts, apply_yaml, plan

ALWAYS_OPEN = 'send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}'


def campaigns(**fields: object) -> str:
    extra = "".join(f"\n    {key}: {value}" for key, value in fields.items())
    return f"""
campaigns:
  - name: pulse
    kind: relationship
    channels: [sms]
    {ALWAYS_OPEN}{extra}
  - name: after-delivery
    kind: transactional
    event: order_delivered
    channels: [sms]
"""


def counts(engine: Container) -> dict[str, tuple[int, int]]:
    with engine.db.transaction() as session:
        names = dict(session.execute(select(Campaign.id, Campaign.name)).all())
    return {
        names[campaign_id]: (f.today, f.week)
        for campaign_id, f in forecast(engine.db, now=engine.clock.now(), rules=engine.planning_rules).items()
    }


def test_the_forecast_is_what_the_next_seven_days_then_send(
    engine: Container, dispatcher: Dispatcher
) -> None:
    now = engine.clock.now()
    rows: list[dict[str, object]] = []
    for i in range(200):
        row: dict[str, object] = {"external_id": f"c{i}", "phone": f"+4915112{i:06d}"}
        if i % 7 == 0:
            row["customer_since"] = (now - timedelta(days=365)).isoformat()
        if i % 11 == 0:
            row["last_surveyed_at"] = (now - timedelta(days=85 + i % 10)).isoformat()
        if i % 13 == 0:
            row["properties"] = {"plan": "free"}
        else:
            row["properties"] = {"plan": "pro"}
        rows.append(row)
    add_contacts(engine, rows)
    apply_yaml(engine, campaigns(interval_days=30, first_after_days=3, audience="{plan: pro}"))

    predicted = counts(engine)

    sent_per_day = []
    for _ in range(7):
        before = len(_sent(engine))
        plan(engine)
        dispatcher.drain()
        sent_per_day.append(len(_sent(engine)) - before)
        engine.clock.advance(days=1)  # type: ignore[attr-defined]
    assert predicted["pulse"] == (sent_per_day[0], sum(sent_per_day)), sent_per_day
    assert sum(sent_per_day) > sent_per_day[0] > 0
    assert predicted["after-delivery"] == (0, 0)  # events cannot be foreseen: only queued ones count


def test_queued_invitations_count_on_their_due_day(engine: Container) -> None:
    add_contacts(engine, [{"external_id": f"c{i}", "phone": f"+4915112{i:06d}"} for i in range(5)])
    apply_yaml(engine, campaigns(interval_days=1))
    assert counts(engine)["pulse"] == (5, 5)
    plan(engine)  # now they are queued rather than predicted: the same count
    assert counts(engine)["pulse"] == (5, 5)


def _sent(engine: Container) -> list[int]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(Invitation.id).where(Invitation.sent_at.is_not(None))))


ANA = {"external_id": "ana", "name": "Ana Lima", "phone": "+4915112345678", "timezone": "UTC"}
DAILY = f"""
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    {ALWAYS_OPEN}
"""


def test_the_forecast_does_not_count_a_contact_who_opted_out(engine: Container) -> None:
    """`decide` returns SKIP/NOT_YET with an OPTED_OUT skip and a due time; the planner records a skip and sends
    nothing (and `nps contacts why` says "never"), so `nps campaigns list` must not count that survey."""
    from campaigns.contacts.consents import Cause, opt_out_address
    from storage.enums import Channel, ConsentSource

    add_contacts(engine, [ANA])
    apply_yaml(engine, DAILY)
    with engine.db.transaction() as session:
        cause = Cause(ConsentSource.KEYWORD, "STOP")
        opt_out_address(Channel.SMS, ANA["phone"], cause=cause, at=engine.clock.now(), session=session)
        campaign_id = session.query(Campaign.id).scalar()
    predicted = forecast(engine.db, now=engine.clock.now(), rules=engine.planning_rules)[campaign_id]
    stats = plan(engine)
    with engine.db.transaction() as session:
        planned = session.query(Invitation).count()
    assert planned == 0, stats  # the planner holds
    assert (predicted.today, predicted.week) == (0, 0), predicted


def test_the_forecast_does_not_count_a_contact_without_a_usable_channel(engine: Container) -> None:
    """An SMS campaign and a contact with no phone: the planner skips them (no_channel) every time."""
    add_contacts(engine, [{**ANA, "phone": None, "email": "ana@example.com"}])
    apply_yaml(engine, DAILY)
    assert counts(engine)["pulse"] == (0, 0)
    plan(engine)
    with engine.db.transaction() as session:
        assert session.query(Invitation).count() == 0
