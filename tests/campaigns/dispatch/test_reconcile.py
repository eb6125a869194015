"""A claim whose worker died is settled from the evidence, never by blindly sending again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from campaigns.channels.base import Outgoing, Transport
from campaigns.dispatch.delivery import apply_status
from campaigns.dispatch.dispatcher import Dispatcher, DispatchStats
from campaigns.dispatch.reconcile import adopt_provider_id
from service.container import Container
from storage.db import Database
from storage.enums import Channel, InvitationState
from storage.tables import Invitation, Message
from tests.fixtures.engine import FROM_NUMBER, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import FakeTwilio
from tests.standins.smtp import SmtpSink

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [{channel}]
"""
ANA = {"external_id": "ana", "phone": "+4915112345678", "email": "ana@example.com", "timezone": "UTC"}
BEN = {"external_id": "ben", "phone": "+4915112345679", "email": "ben@example.com", "timezone": "UTC"}


def crash_after_prepare(engine: Container, dispatcher: Dispatcher, channel: str = "sms") -> list:  # type: ignore[type-arg]
    """Claim and stage like a worker would, then "die": nothing is recorded."""
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN.format(channel=channel))
    plan(engine)
    return dispatcher._prepare(dispatcher._claim(), DispatchStats())


def only_invitation(engine: Container) -> Invitation:
    with engine.db.transaction() as session:
        return session.scalars(select(Invitation)).one()


def after_the_claim_timeout(engine: Container) -> None:
    engine.clock.advance(engine.dispatch_config().claim_timeout * 2)  # type: ignore[attr-defined]


def test_a_fresh_claim_is_left_alone(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    crash_after_prepare(engine, dispatcher)
    assert dispatcher.recover_stale_claims() == 0
    assert only_invitation(engine).state is InvitationState.CLAIMED


def test_a_send_twilio_received_is_completed_not_repeated(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    [staged] = crash_after_prepare(engine, dispatcher)
    dispatcher.transports[staged.outgoing.channel].send(
        staged.outgoing
    )  # reached Twilio; the answer was lost
    after_the_claim_timeout(engine)
    dispatcher.drain()
    assert fake_twilio.count() == 1
    invitation = only_invitation(engine)
    assert invitation.state is InvitationState.SENT
    assert invitation.last_error == "completed from the provider's log after the worker stopped"
    with engine.db.transaction() as session:
        message = session.scalars(select(Message)).one()
    assert message.provider_id == fake_twilio.messages()[0].sid


# What Twilio stores may differ from what we sent: Smart Encoding turns these quotes, dashes and the ellipsis
# into GSM-7 characters; opt-out text may be appended.
TYPOGRAPHIC = """
    messages:
      en: {sms: "Hi — how likely are you to recommend “Acme”? Reply 0–10…"}
"""


@pytest.mark.parametrize(
    ("smart_encoding", "footer"), [(True, ""), (False, "\nReply STOP to unsubscribe"), (True, " STOP=stop")]
)
def test_a_send_twilio_stored_with_another_text_is_completed_not_repeated(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    smart_encoding: bool,
    footer: str,
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN.format(channel="sms") + TYPOGRAPHIC)
    plan(engine)
    [staged] = dispatcher._prepare(dispatcher._claim(), DispatchStats())
    fake_twilio.store_bodies_as(smart_encoding=smart_encoding, footer=footer)
    dispatcher.transports[Channel.SMS].send(staged.outgoing)  # reached Twilio; then the worker died
    [stored] = fake_twilio.messages()
    assert stored.body != staged.outgoing.body
    after_the_claim_timeout(engine)
    dispatcher.drain()
    assert fake_twilio.count() == 1
    invitation = only_invitation(engine)
    assert invitation.state is InvitationState.SENT
    with engine.db.transaction() as session:
        assert session.scalars(select(Message.provider_id)).all() == [stored.sid]


def test_the_same_words_from_another_sender_of_the_account_are_not_our_send(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    [staged] = crash_after_prepare(engine, dispatcher)
    another_number = fake_twilio.client()  # e.g. another service texting from the same Twilio account
    another_number.messages.create(to=ANA["phone"], from_="+15005550009", body=staged.outgoing.body)
    after_the_claim_timeout(engine)
    dispatcher.drain()
    assert [m.from_ for m in fake_twilio.messages()] == ["+15005550009", FROM_NUMBER]
    assert only_invitation(engine).state is InvitationState.SENT


def test_a_send_twilio_never_received_is_sent_once(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    crash_after_prepare(engine, dispatcher)
    after_the_claim_timeout(engine)
    dispatcher.drain()
    assert fake_twilio.count() == 1
    assert only_invitation(engine).state is InvitationState.SENT
    with engine.db.transaction() as session:
        statuses = session.scalars(select(Message.send_state).order_by(Message.id)).all()
    assert statuses == ["not_sent", "sent"]


def test_an_email_that_may_have_gone_out_is_held_for_review(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink
) -> None:
    crash_after_prepare(engine, dispatcher, channel="email")
    after_the_claim_timeout(engine)
    dispatcher.drain()
    invitation = only_invitation(engine)
    assert invitation.state is InvitationState.REVIEW
    assert "held for review" in (invitation.last_error or "")
    assert smtp_sink.messages() == []


def test_a_claim_that_staged_nothing_is_requeued(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [ANA])
    apply_yaml(engine, CAMPAIGN.format(channel="sms"))
    plan(engine)
    dispatcher._claim()  # died right after claiming
    after_the_claim_timeout(engine)
    assert dispatcher.recover_stale_claims() == 1
    invitation = only_invitation(engine)
    assert invitation.state is InvitationState.PLANNED
    assert invitation.last_error == "claim expired before anything was sent; requeued"


# --- two reconcilers, and reconciliation next to other writers (issue 10, cases 3 and 7) ----------------


class LogReadHook:
    """The real Twilio adapter, with a point we control inside its log read: `during(to)` runs there.

    `during` runs after Twilio's log was read and before its answer is returned, so what it does (another
    reconciler, another writer) happens while this reconciliation waits on Twilio.
    """

    def __init__(self, inner: Transport, during: Callable[[str], None]) -> None:
        self.inner = inner
        self.channel = inner.channel
        self.name = inner.name
        self.during = during

    def send(self, message: Outgoing) -> str:
        return self.inner.send(message)

    def find_sent(
        self, to: str, body: str, since: datetime, until: datetime | None = None
    ) -> Sequence[str] | None:
        found = self.inner.find_sent(to, body, since, until)
        self.during(to)
        return found


def dispatcher_with(engine: Container, worker_id: str, transport: Transport) -> Dispatcher:
    transports = {**engine.transports, Channel.SMS: transport}
    return Dispatcher(
        engine.db, transports, clock=engine.clock, config=engine.dispatch_config(), worker_id=worker_id
    )


def writes_without_waiting(db: Database) -> bool:
    """Another connection takes the write lock (SQLite) or the invitations' row locks (PostgreSQL) at once."""
    with db.engine.connect() as connection:
        try:
            if db.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA busy_timeout=100")
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql("SET lock_timeout = '100ms'")
                connection.execute(select(Invitation.id).with_for_update())
            connection.rollback()
        except OperationalError:
            return False
    return True


def test_reconciliation_holds_no_transaction_while_it_reads_twilios_log(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    add_contacts(engine, [ANA, BEN])
    apply_yaml(engine, CAMPAIGN.format(channel="sms"))
    plan(engine)
    dispatcher._prepare(
        dispatcher._claim(), DispatchStats()
    )  # died after staging both: only the log can tell
    after_the_claim_timeout(engine)
    free: list[bool] = []
    reconciler = dispatcher_with(
        engine,
        "reconciler",
        LogReadHook(
            dispatcher.transports[Channel.SMS], lambda _: free.append(writes_without_waiting(engine.db))
        ),
    )
    try:
        assert reconciler.recover_stale_claims() == 2
    finally:
        reconciler.close()
    assert free == [True, True]
    with engine.db.transaction() as session:
        states = session.scalars(select(Invitation.state)).all()
    assert states == [InvitationState.PLANNED, InvitationState.PLANNED]


def test_two_reconcilers_on_one_stale_claim_text_the_person_once(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    crash_after_prepare(engine, dispatcher)  # staged, never reached Twilio
    after_the_claim_timeout(engine)
    real = dispatcher.transports[Channel.SMS]
    other = dispatcher_with(engine, "serve", real)
    ran: list[DispatchStats] = []

    def the_other_reconciler_settles_and_resends(_: str) -> None:
        if not ran:
            ran.append(other.drain())  # it finds nothing in the log either, requeues and sends again

    slow = dispatcher_with(engine, "worker", LogReadHook(real, the_other_reconciler_settles_and_resends))
    try:
        slow.recover_stale_claims()  # its answer ("never received") is stale by the time it acts on it
        slow.drain()
        other.drain()
    finally:
        slow.close()
        other.close()
    assert ran[0].sent == 1
    assert [m.to for m in fake_twilio.messages()] == [ANA["phone"]]
    invitation = only_invitation(engine)
    assert invitation.state is InvitationState.SENT
    assert invitation.owner is None


def test_a_delivered_survey_stays_delivered_when_a_slower_reconciler_settles_it_again(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    [staged] = crash_after_prepare(engine, dispatcher)
    dispatcher.transports[Channel.SMS].send(staged.outgoing)  # reached Twilio; the answer was lost
    after_the_claim_timeout(engine)
    real = dispatcher.transports[Channel.SMS]
    other = dispatcher_with(engine, "serve", real)

    def the_other_completes_and_it_is_delivered(_: str) -> None:
        if other.recover_stale_claims():
            with engine.db.transaction() as session:
                apply_status(
                    fake_twilio.messages()[0].sid, "delivered", None, now=engine.clock.now(), session=session
                )

    slow = dispatcher_with(engine, "worker", LogReadHook(real, the_other_completes_and_it_is_delivered))
    try:
        slow.recover_stale_claims()
        slow.drain()
    finally:
        slow.close()
        other.close()
    assert fake_twilio.count() == 1
    invitation = only_invitation(engine)
    assert invitation.state is InvitationState.DELIVERED
    assert invitation.last_error == "completed from the provider's log after the worker stopped"


# --- a shared phone: another of our messages with the same text to the same number --------------------------

# A household or a reception desk: two contacts, one phone, identical texts from the same sender.
SHARED = [
    {"external_id": "ana", "phone": ANA["phone"], "timezone": "UTC"},
    {"external_id": "ben", "phone": ANA["phone"], "timezone": "UTC"},
]
CAI = {"external_id": "cai", "phone": "+4915199999999", "timezone": "UTC"}


def stage_all(engine: Container, dispatcher: Dispatcher, contacts: list[dict[str, str]]) -> list:  # type: ignore[type-arg]
    """Claim and stage every contact's survey like a worker, then "die"; in invitation order."""
    add_contacts(engine, contacts)
    apply_yaml(engine, CAMPAIGN.format(channel="sms"))
    plan(engine)
    staged = dispatcher._prepare(dispatcher._claim(), DispatchStats())
    assert len(staged) == len(contacts)
    return sorted(staged, key=lambda send: send.invitation_id)


def invitation_states(engine: Container) -> list[InvitationState]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(Invitation.state).order_by(Invitation.id)))


def test_a_shared_phones_identical_text_does_not_settle_a_survey_that_never_left(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    """Ben's text went out and was recorded; the worker died before Ana's. Twilio's log has Ben's identical
    text to that number: it proves Ben's send, not Ana's, so Ana is texted."""
    ana, ben = stage_all(engine, dispatcher, SHARED)
    dispatcher._record([dispatcher._send(ben)], DispatchStats())  # then the worker dies before Ana's send
    assert ana.outgoing.body == ben.outgoing.body
    after_the_claim_timeout(engine)
    dispatcher.drain()
    assert fake_twilio.count() == 2
    assert invitation_states(engine) == [InvitationState.SENT, InvitationState.SENT]
    with engine.db.transaction() as session:
        sids = session.scalars(select(Message.provider_id).where(Message.provider_id.is_not(None))).all()
    assert sorted(sids) == sorted(m.sid for m in fake_twilio.messages())


def test_a_claim_matching_another_messages_sid_does_not_hold_up_the_claims_after_it(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio
) -> None:
    """Cai's claim (another number, lost before its send) comes after Ana's in the run: it is settled too."""
    _ana, ben, _cai = stage_all(engine, dispatcher, [*SHARED, CAI])
    dispatcher._record([dispatcher._send(ben)], DispatchStats())  # then the worker dies
    after_the_claim_timeout(engine)
    dispatcher.drain()
    assert sorted(m.to for m in fake_twilio.messages()) == sorted([ANA["phone"], ANA["phone"], CAI["phone"]])
    assert invitation_states(engine) == [InvitationState.SENT] * 3


@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_claim_that_fails_to_settle_is_left_for_the_next_run_and_the_others_proceed(
    engine: Container, dispatcher: Dispatcher, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    """Ben's text reached Twilio, unrecorded, and both claims on the shared phone find its SID in the log.
    While the reconciler asks about Ana's, Ben's status callback records that SID for Ben's message in a
    transaction that commits only once completing Ana's with the same SID waits on it: the unique (channel,
    provider_id) refuses Ana's. That claim is logged and left; Ben's and Cai's, after it, are settled in the same
    run; the next run texts Ana."""
    ana, ben, _cai = stage_all(engine, dispatcher, [*SHARED, CAI])
    dispatcher.transports[Channel.SMS].send(ben.outgoing)  # reached Twilio; the worker died before recording
    [bens_sid] = [m.sid for m in fake_twilio.messages()]
    after_the_claim_timeout(engine)
    started: list[Future[None]] = []

    with engine.db.engine.connect() as callback, ThreadPoolExecutor(1) as committer:
        callback_pid = callback.exec_driver_sql("SELECT pg_backend_pid()").scalar()

        def commit_once_anas_completion_waits_on_it() -> None:
            with engine.db.engine.connect() as watcher:
                waiting = text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
                )
                deadline = time.monotonic() + 10  # a bound against a hang, not a timing assumption
                while (
                    not watcher.execute(waiting, {"pid": callback_pid}).scalar()
                    and time.monotonic() < deadline
                ):
                    watcher.rollback()
                    time.sleep(0.01)
            callback.commit()

        def bens_status_callback_arrives(_: str) -> None:
            if not started:
                with Session(bind=callback, join_transaction_mode="rollback_only") as session:
                    adopt_provider_id(ben.message_id, bens_sid, now=engine.clock.now(), session=session)
                    session.flush()
                started.append(committer.submit(commit_once_anas_completion_waits_on_it))

        reconciler = dispatcher_with(
            engine,
            "reconciler",
            LogReadHook(dispatcher.transports[Channel.SMS], bens_status_callback_arrives),
        )
        try:
            with caplog.at_level(logging.WARNING, logger="campaigns.dispatch.reconcile"):
                assert reconciler.recover_stale_claims() == 2  # Ben's (by its callback's SID) and Cai's
        finally:
            reconciler.close()
        started[0].result()
    assert f"could not settle invitation {ana.invitation_id} (IntegrityError)" in caplog.text
    assert invitation_states(engine) == [
        InvitationState.CLAIMED,
        InvitationState.SENT,
        InvitationState.PLANNED,
    ]
    after_the_claim_timeout(engine)
    dispatcher.drain()
    assert sorted(m.to for m in fake_twilio.messages()) == sorted([ANA["phone"], ANA["phone"], CAI["phone"]])
    assert invitation_states(engine) == [InvitationState.SENT] * 3
