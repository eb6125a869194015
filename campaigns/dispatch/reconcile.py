"""Claims whose worker died: settled from the evidence, never by blindly sending again.

The same for every purpose (the survey and its reminder; the flows are in campaigns.dispatch.outbox). No
message row means nothing was sent: put back. A message row whose provider id is known (a status callback
named it, see `adopt_provider_id`) went out: completed. Otherwise it is checked against the provider's log,
which the adapter searches for our text from our sender to that address within the claim's time window (what
the provider stored may differ a little: campaigns.channels.sms): completed if it went out, put back if not; a
provider without a log (SMTP) cannot tell, so the survey is held for review and a reminder is dropped, instead
of risking a second message.

A run has three steps, and no transaction is open while the provider is asked:
1. read the stale claims and their last message (one short transaction);
2. ask the provider's log about each claim that needs it (an HTTP call each, no transaction open, so inbound
   webhooks and other workers write meanwhile);
3. apply each decision in its own short transaction, as a compare-and-set on the claim that was read
   (`take_claim`): when another reconciler, a late worker, a reply or a status callback changed the row
   meanwhile, the decision is stale and dropped. Several reconcilers (`nps serve` and `nps worker` on SQLite,
   where `FOR UPDATE SKIP LOCKED` does not exist) may read the same claim; only one of them settles it.
A run is bounded in rows and in time; what is left waits for the next run.

A provider id proves one send only. Two contacts sharing a phone (a household, a reception desk) get identical
texts from the same sender, so the log can answer with the SID of our *other* message: an id already recorded
for another message is no evidence for this one and is left out (`_unrecorded`). Each claim is settled on its
own: when one fails (its id was recorded elsewhere meanwhile and the unique (channel, provider_id) refuses it,
the database hiccups) it is logged and left as it is for the next run, and the run goes on with the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from campaigns.channels.base import Transport
from campaigns.dispatch.outbox import FLOWS, Flow, complete, set_send_state, take_claim
from campaigns.events import Event, emit_after_commit
from storage.db import Database
from storage.enums import Channel, Direction, SendState
from storage.tables import Invitation, Message

log = logging.getLogger(__name__)

# A message in one of these states may have reached the provider.
_MAYBE_SENT = (SendState.SENDING, SendState.UNKNOWN, SendState.SENT)
# At most this many claims are settled per run, and no provider log is asked after this much time.
MAX_CLAIMS_PER_RUN = 200
TIME_BUDGET = timedelta(seconds=30)


@dataclass(frozen=True)
class _Trace:
    """The claim's last outbound message that may have reached the provider, as it was read."""

    message_id: int
    channel: Channel
    address: str
    body: str
    send_state: SendState
    provider_id: str | None


@dataclass(frozen=True)
class _StaleClaim:
    invitation_id: int
    owner: str | None
    claimed_at: datetime
    trace: _Trace | None


class _Evidence(Enum):
    NOTHING_STAGED = "no message was written: nothing can have gone out"
    CALLED_BACK = "the provider named it in a status callback"
    FOUND = "the provider has it"
    NOT_RECEIVED = "the provider's log does not have it"
    NO_LOG = "the provider keeps no log to ask"


# What each kind of evidence decides (the words of the reconciliation's log line).
_DECISIONS = {
    _Evidence.NOTHING_STAGED: "requeued: sent when due again",
    _Evidence.CALLED_BACK: "recorded as sent: not sent again",
    _Evidence.FOUND: "recorded as sent: not sent again",
    _Evidence.NOT_RECEIVED: "requeued: sent when due again",
    _Evidence.NO_LOG: "held for review (a reminder is dropped): sending again could text the person twice",
}


@dataclass(frozen=True)
class _Verdict:
    evidence: _Evidence
    provider_id: str | None = None


def recover_stale_claims(
    db: Database,
    transports: Mapping[Channel, Transport],
    *,
    now: datetime,
    claim_timeout: timedelta,
    max_claims: int = MAX_CLAIMS_PER_RUN,
    time_budget: timedelta = TIME_BUDGET,
) -> int:
    """Settle claims older than the claim timeout (their worker died); returns how many this run settled."""
    cutoff = now - claim_timeout
    deadline = time.monotonic() + time_budget.total_seconds()
    settled = 0
    for flow in FLOWS.values():
        for claim in _stale_claims(db, flow, cutoff, limit=max_claims - settled):
            if time.monotonic() > deadline:
                log.info("reconciliation used its %s; the rest waits for the next run", time_budget)
                return settled
            if _reconcile(db, flow, claim, transports, claim_timeout, now):
                settled += 1
        if settled >= max_claims:
            break
    return settled


def _reconcile(
    db: Database,
    flow: Flow,
    claim: _StaleClaim,
    transports: Mapping[Channel, Transport],
    claim_timeout: timedelta,
    now: datetime,
) -> bool:
    """Settle one claim; whatever goes wrong with it is logged and leaves it for the next run, never the run."""
    try:
        # May ask the provider: no transaction is open here.
        verdict = _verdict(db, claim, transports, claim_timeout)
        return verdict is not None and _apply(db, flow, claim, verdict, now)
    except Exception as error:
        log.warning(
            "could not settle invitation %s (%s); it is left for the next run",
            claim.invitation_id,
            type(error).__name__,
        )
        return False


def _stale_claims(db: Database, flow: Flow, cutoff: datetime, *, limit: int) -> list[_StaleClaim]:
    """The claims to settle and their last message, read in one short transaction."""
    if limit <= 0:
        return []
    with db.transaction() as session:
        invitations = session.scalars(
            select(Invitation)
            .where(flow.claimed(), Invitation.claimed_at < cutoff)
            .order_by(Invitation.id)
            .limit(limit)
        ).all()
        traces = _last_traces(flow, invitations, session=session)
        return [
            _StaleClaim(i.id, i.owner, i.claimed_at, traces.get(i.id))
            for i in invitations
            if i.claimed_at is not None
        ]


def _last_traces(flow: Flow, invitations: Sequence[Invitation], *, session: Session) -> dict[int, _Trace]:
    """Per invitation, its newest message of this purpose written since the claim that may have gone out."""
    claimed_at = {i.id: i.claimed_at for i in invitations}
    messages = session.scalars(
        select(Message)
        .where(
            Message.invitation_id.in_(list(claimed_at)),
            Message.direction == Direction.OUTBOUND,
            Message.purpose == flow.purpose,
            Message.send_state.in_(_MAYBE_SENT),
        )
        .order_by(Message.id)
    ).all()
    traces: dict[int, _Trace] = {}
    for message in messages:
        since = claimed_at.get(message.invitation_id or 0)
        if since is not None and message.created_at >= since and message.send_state is not None:
            assert message.invitation_id is not None
            traces[message.invitation_id] = _Trace(
                message.id,
                message.channel,
                message.address,
                message.body or "",
                message.send_state,
                message.provider_id,
            )
    return traces


def _verdict(
    db: Database, claim: _StaleClaim, transports: Mapping[Channel, Transport], claim_timeout: timedelta
) -> _Verdict | None:
    """What the evidence says about the claim; None when the provider's log cannot be read now."""
    trace = claim.trace
    if trace is None:
        return _Verdict(_Evidence.NOTHING_STAGED)
    if trace.provider_id:
        evidence = _Evidence.FOUND if trace.send_state is SendState.SENT else _Evidence.CALLED_BACK
        return _Verdict(evidence, trace.provider_id)
    transport = transports.get(trace.channel)
    # A send of this claim started within half the claim timeout (the dispatcher's send_by) and the provider
    # logs it when the request arrives: the whole timeout is a generous window.
    until = claim.claimed_at + claim_timeout
    try:
        found = transport.find_sent(trace.address, trace.body, claim.claimed_at, until) if transport else None
    except Exception as error:  # the provider's log is unavailable: decide at a later run, send nothing now
        log.warning(
            "cannot check invitation %s against the provider log yet: %s",
            claim.invitation_id,
            type(error).__name__,
        )
        return None
    if found is None:
        return _Verdict(_Evidence.NO_LOG)
    unrecorded = _unrecorded(db, trace, found)
    if unrecorded:
        return _Verdict(_Evidence.FOUND, unrecorded[0])
    return _Verdict(_Evidence.NOT_RECEIVED)


def _unrecorded(db: Database, trace: _Trace, found: Sequence[str]) -> list[str]:
    """The provider ids in `found` not recorded for another of our messages (see the module), in their order."""
    if not found:
        return []
    with db.transaction() as session:
        recorded = set(
            session.scalars(
                select(Message.provider_id).where(
                    Message.channel == trace.channel,
                    Message.provider_id.in_(list(found)),
                    Message.id != trace.message_id,
                )
            )
        )
    return [sid for sid in found if sid not in recorded]


class _SettledElsewhere(Exception):
    """The message changed after it was read: roll the decision back."""


def _apply(db: Database, flow: Flow, claim: _StaleClaim, verdict: _Verdict, now: datetime) -> bool:
    """Apply one decision in its own transaction; False when the claim was settled elsewhere meanwhile."""
    try:
        with db.transaction() as session:
            invitation = take_claim(
                flow,
                claim.invitation_id,
                owner=claim.owner,
                claimed_at=claim.claimed_at,
                now=now,
                session=session,
            )
            if invitation is None:
                raise _SettledElsewhere
            _settle(flow, invitation, claim, verdict, now, session=session)
            emit_after_commit(
                session,
                log,
                Event.RECONCILED,
                level=logging.WARNING,
                invitation=claim.invitation_id,
                purpose=flow.purpose,
                channel=claim.trace.channel if claim.trace else None,
                worker=claim.owner,
                evidence=verdict.evidence.value,
                decision=_DECISIONS[verdict.evidence],
                provider_id=verdict.provider_id,
            )
    except _SettledElsewhere:
        log.info("invitation %s was settled elsewhere meanwhile; keeping that", claim.invitation_id)
        return False
    return True


def _settle(
    flow: Flow,
    invitation: Invitation,
    claim: _StaleClaim,
    verdict: _Verdict,
    now: datetime,
    *,
    session: Session,
) -> None:
    trace = claim.trace
    if verdict.evidence is _Evidence.NOTHING_STAGED or trace is None:
        flow.put_back(invitation, now, now)
        invitation.last_error = "claim expired before anything was sent; requeued"
        return
    if verdict.evidence is _Evidence.NO_LOG:
        flow.unverifiable(
            invitation,
            f"the worker stopped while sending by {trace.channel}; the provider keeps no log to check "
            "whether it went out",
            now,
        )
        return
    if verdict.evidence is _Evidence.NOT_RECEIVED:
        if not set_send_state(trace.message_id, trace.send_state, SendState.NOT_SENT, now, session=session):
            raise _SettledElsewhere
        flow.put_back(invitation, now, now)
        invitation.last_error = "the provider never received it; requeued"
        return
    message = session.get(Message, trace.message_id, populate_existing=True)
    if message is None or message.send_state is not trace.send_state:
        raise _SettledElsewhere
    assert verdict.provider_id is not None
    created_at = message.created_at
    complete(flow, invitation, message, verdict.provider_id, created_at, now=now, session=session)
    if verdict.evidence is _Evidence.CALLED_BACK:
        invitation.last_error = "completed by its provider id from a status callback after the worker stopped"
    elif trace.send_state is not SendState.SENT:
        invitation.last_error = "completed from the provider's log after the worker stopped"


# --- a status callback that names its message --------------------------------------------------------------


def adopt_provider_id(message_id: int, provider_id: str, *, now: datetime, session: Session) -> bool:
    """Record the provider id a status callback gives for our message `message_id` (its `?m=`).

    The callback's URL was signed by the provider over our message id, so it is the provider's own word that
    it has that message, whatever our send heard back. Used only for an outbound message that may have gone out
    (`sending`, `unknown`) and has no other provider id, once (a compare-and-set). When the send was uncertain
    (`unknown`: its worker recorded a 5xx or a timeout and left the claim for reconciliation) the claim is
    completed at once, in this transaction, as a compare-and-set on the claim like reconciliation's; while the
    send is still under way (`sending`) only the id is stored, and the worker's record step or reconciliation
    (by that id, without the provider's log) finishes it. Returns True when this completed the send.
    """
    message = session.get(Message, message_id)
    if message is None or message.direction is not Direction.OUTBOUND or message.purpose not in FLOWS:
        return False
    state = message.send_state
    if state not in (SendState.SENDING, SendState.UNKNOWN) or message.provider_id not in (None, provider_id):
        return False
    assert state is not None
    other = session.scalar(
        select(Message.id).where(
            Message.channel == message.channel, Message.provider_id == provider_id, Message.id != message_id
        )
    )
    if other is not None:
        return False  # the id belongs to another message already
    # An uncertain send's claim is taken first: the invitation's lock, then the message's, as reconciliation.
    invitation = _claim_of(message, now, session=session) if state is SendState.UNKNOWN else None
    if not _record_provider_id(message_id, provider_id, state, session=session) or invitation is None:
        return False
    message = session.get(Message, message_id, populate_existing=True)
    assert message is not None
    complete(
        FLOWS[message.purpose], invitation, message, provider_id, message.created_at, now=now, session=session
    )
    invitation.last_error = "completed by the provider's status callback after an uncertain answer"
    return True


def _claim_of(message: Message, now: datetime, *, session: Session) -> Invitation | None:
    """The claim `message` was sent under, taken (compare-and-set) to settle; None when it is not open."""
    invitation = session.get(Invitation, message.invitation_id) if message.invitation_id else None
    if (
        invitation is None
        or invitation.claimed_at is None
        or invitation.claimed_for is not message.purpose
        or message.created_at < invitation.claimed_at  # staged under an earlier claim
    ):
        return None
    flow = FLOWS[message.purpose]
    return take_claim(
        flow,
        invitation.id,
        owner=invitation.owner,
        claimed_at=invitation.claimed_at,
        now=now,
        session=session,
    )


def _record_provider_id(message_id: int, provider_id: str, expected: SendState, *, session: Session) -> bool:
    """Compare-and-set: the message is still in `expected` and has no other provider id."""
    changed = session.execute(
        update(Message)
        .where(
            Message.id == message_id,
            Message.send_state == expected,
            or_(Message.provider_id.is_(None), Message.provider_id == provider_id),
        )
        .values(provider_id=provider_id)
        .execution_options(synchronize_session=False)
    )
    return changed.rowcount == 1  # type: ignore[attr-defined]
