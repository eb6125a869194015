"""Planning: turning campaigns and events into invitation rows (the outbox), with every skip recorded.

Planning only writes rows; nothing is sent here. The dispatcher re-checks eligibility before sending.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.definitions.json_codec import definition_from_json
from campaigns.definitions.model import CampaignDefinition
from campaigns.planning import bulk
from campaigns.planning.decide import CampaignClock, CampaignHistory, Outcome, decide, skip_at
from campaigns.planning.eligibility import ContactFacts, Skip
from campaigns.planning.facts import contact_facts, contact_view, contacts_with_pending_invitations
from campaigns.planning.quiet_hours import QuietRule, shipped_rules
from campaigns.planning.sampling import is_sampled
from campaigns.planning.skips import record_skip, record_skips
from campaigns.planning.windows import next_send_time, zone_for
from storage.db import Database
from storage.enums import CampaignStatus, InvitationState, SkipReason
from storage.tables import IS_PENDING, Campaign, Contact, Event, Invitation

log = logging.getLogger(__name__)

CHUNK = 1000
# The relationship audience is rescanned at most this often; due dates have a granularity of days.
RESCAN_EVERY = timedelta(minutes=10)


@dataclass(frozen=True)
class PlanningRules:
    """Service-wide settings the planner applies."""

    min_days_between_surveys: int = 90
    default_timezone: str = "UTC"
    # Legal quiet hours for texts by country and US state (campaigns/quiet_hours.yaml, NPS_QUIET_HOURS_FILE).
    quiet_hours: Mapping[str, QuietRule] = field(default_factory=shipped_rules)


@dataclass
class PlanStats:
    planned: int = 0
    skipped: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + 1


def new_token() -> str:
    """The survey link token: unguessable, URL-safe, 22 characters."""
    return secrets.token_urlsafe(16)


SHORT_TOKEN_LENGTH = 10


def new_short_token() -> str:
    """The SMS link's token: 10 URL-safe characters (60 random bits), a quarter of a segment less than the
    full token; unique in the database (`invitations.short_token`)."""
    return secrets.token_urlsafe(8)[:SHORT_TOKEN_LENGTH]


def invitation_row(
    campaign: Campaign,
    definition: CampaignDefinition,
    contact: Contact,
    *,
    due: datetime,
    now: datetime,
    rules: PlanningRules,
    dedupe_key: str,
    event_id: int | None = None,
) -> dict[str, Any]:
    zone = zone_for(contact.timezone, definition.timezone, rules.default_timezone)
    return {
        "campaign_id": campaign.id,
        "contact_id": contact.id,
        "state": InvitationState.PLANNED,
        "due_at": next_send_time(definition.send_window, zone, max(due, now)),
        "token": new_token(),
        "dedupe_key": dedupe_key,
        "event_id": event_id,
        "last_error": None,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def insert_invitations(rows: Sequence[dict[str, Any]], *, session: Session) -> set[int]:
    """Insert the rows; returns the contacts whose row went in.

    A pending row for a contact that already has one (planned elsewhere at the same moment, e.g. by an event
    while the planner runs, or by a second process) is left out: the schema allows one pending invitation per
    contact (`ux_invitations_one_pending_per_contact`), and the insert waits for a concurrent one to commit
    instead of failing.
    """
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(Invitation)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["contact_id"], index_where=IS_PENDING)
        .returning(Invitation.contact_id)
    )
    return set(session.scalars(statement))


def _pending_elsewhere() -> Skip:
    return Skip(SkipReason.PENDING, "another survey is already queued for this contact")


# --- recurring (relationship) campaigns ------------------------------------------------------------------


def plan_recurring(
    db: Database, *, now: datetime, rules: PlanningRules, force: bool = False, set_based: bool = True
) -> PlanStats:
    """Plan every active recurring campaign whose audience is due for a rescan.

    Set-based (`campaigns.planning.bulk`) where the campaign allows it; `set_based=False` plans contact by
    contact everywhere (the reference the set-based planner is tested against).
    """
    stats = PlanStats()
    with db.transaction() as session:
        campaigns = session.scalars(select(Campaign).where(Campaign.status == CampaignStatus.ACTIVE)).all()
    for campaign in campaigns:
        definition = definition_from_json(campaign.definition)
        if definition.interval_days is None:
            continue
        if not force and campaign.last_planned_at and now - campaign.last_planned_at < RESCAN_EVERY:
            continue
        _plan_campaign(db, campaign, definition, now=now, rules=rules, stats=stats, set_based=set_based)
    return stats


def _plan_campaign(
    db: Database,
    campaign: Campaign,
    definition: CampaignDefinition,
    *,
    now: datetime,
    rules: PlanningRules,
    stats: PlanStats,
    set_based: bool = True,
) -> None:
    assert definition.interval_days is not None
    with db.transaction() as session:
        anchors = event_anchors(definition, session=session) if definition.event else {}
        budget = daily_budget(campaign, definition, now, session=session)
    why_not = bulk.supports(definition) if set_based else "asked to"
    if why_not is None:
        _plan_set_based(db, campaign, definition, now=now, rules=rules, stats=stats)
    else:
        log.info("planning %s contact by contact: %s", campaign.name, why_not)
        for chunk in contact_chunks(db):
            with db.transaction() as session:
                budget = _plan_contacts(
                    session,
                    campaign,
                    definition,
                    chunk,
                    anchors=anchors,
                    budget=budget,
                    now=now,
                    rules=rules,
                    stats=stats,
                )
    with db.transaction() as session:
        stored = session.get(Campaign, campaign.id)
        if stored is not None:
            stored.last_planned_at = now


def _plan_set_based(
    db: Database,
    campaign: Campaign,
    definition: CampaignDefinition,
    *,
    now: datetime,
    rules: PlanningRules,
    stats: PlanStats,
) -> None:
    """One INSERT ... SELECT per id range; the due contacts it cannot plan go through `_plan_contacts`."""
    with db.transaction() as session:
        ranges = bulk.id_ranges(session)
    with _checkpoints_deferred(db) as transaction:
        by_python = _plan_ranges(transaction, campaign, definition, ranges, now=now, rules=rules, stats=stats)
    if by_python:
        log.info(
            "planned %d of %d contact ranges of %s contact by contact: their audience properties are not plain "
            "ASCII text or use another case for a filtered key",
            by_python,
            len(ranges),
            campaign.name,
        )


# SQLite copies its write-ahead log into the database (a checkpoint) at the first commit that finds the log
# over 1,000 pages. Every range's rows land on pages all over the random survey tokens' index, so each range's
# checkpoint rewrote most of that index: a cost per range growing with the outbox, quadratic over a large base
# (5x the baseline at 1,000,000 contacts). The planner lets the log grow to this many pages (64 MB) between
# checkpoints, each page then written once for several ranges, and checkpoints when it is done.
PLANNING_CHECKPOINT_PAGES = 16_000
SQLITE_CHECKPOINT_PAGES = 1000  # SQLite's default, restored for the connection's next user


@contextmanager
def _checkpoints_deferred(db: Database) -> Iterator[Callable[[], AbstractContextManager[Session]]]:
    """A factory of range transactions; on SQLite all on one connection that checkpoints less often."""
    if db.engine.dialect.name != "sqlite":
        yield db.transaction
        return
    with db.engine.connect() as connection:
        connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={PLANNING_CHECKPOINT_PAGES}")
        connection.commit()

        @contextmanager
        def transaction() -> Iterator[Session]:
            with db.sessions(bind=connection) as session, session.begin():
                yield session

        try:
            yield transaction
        finally:
            connection.rollback()
            connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            connection.commit()


def _plan_ranges(
    transaction: Callable[[], AbstractContextManager[Session]],
    campaign: Campaign,
    definition: CampaignDefinition,
    ranges: Sequence[tuple[int, int]],
    *,
    now: datetime,
    rules: PlanningRules,
    stats: PlanStats,
) -> int:
    """Plans each range in a transaction of its own; returns how many went contact by contact."""
    by_python = 0
    for low, high in ranges:
        with transaction() as session:
            leftover = bulk.leftovers(
                session,
                campaign,
                definition,
                low=low,
                high=high,
                now=now,
                global_fatigue_days=rules.min_days_between_surveys,
            )
            if leftover is None:
                by_python += 1
                contacts = _contacts_between(low, high, session=session)
                _plan_contacts(
                    session,
                    campaign,
                    definition,
                    contacts,
                    anchors={},
                    budget=None,
                    now=now,
                    rules=rules,
                    stats=stats,
                )
                continue
            planned, lost = bulk.insert_due(
                session,
                campaign,
                definition,
                low=low,
                high=high,
                now=now,
                global_fatigue_days=rules.min_days_between_surveys,
                default_timezone=rules.default_timezone,
            )
            stats.planned += planned
            skips: list[tuple[int, int, Skip]] = []
            for contact_id in lost:  # planned elsewhere meanwhile
                skips.append((campaign.id, contact_id, _pending_elsewhere()))
                stats.skip(SkipReason.PENDING)
            # Due and not eligible: `decide` skips them with the check at now (their due time is past).
            undecided = []
            for left in leftover:
                skip = _skip_at_planning(definition, left.facts, due=now, rules=rules)
                if skip is None:
                    undecided.append(left.contact_id)  # SQL and Python disagree: Python decides
                    continue
                skips.append((campaign.id, left.contact_id, skip))
                stats.skip(skip.reason)
            record_skips(skips, at=now, session=session)
            if undecided:
                contacts = list(
                    session.scalars(select(Contact).where(Contact.id.in_(undecided)).order_by(Contact.id))
                )
                _plan_contacts(
                    session,
                    campaign,
                    definition,
                    contacts,
                    anchors={},
                    budget=None,
                    now=now,
                    rules=rules,
                    stats=stats,
                )
    return by_python


def _contacts_between(low: int, high: int, *, session: Session) -> list[Contact]:
    return list(session.scalars(select(Contact).where(Contact.id.between(low, high)).order_by(Contact.id)))


def _plan_contacts(
    session: Session,
    campaign: Campaign,
    definition: CampaignDefinition,
    contacts: Sequence[Contact],
    *,
    anchors: dict[int, datetime],
    budget: int | None,
    now: datetime,
    rules: PlanningRules,
    stats: PlanStats,
) -> int | None:
    """Contact by contact, with `decide`: plans the due and eligible, records the skips; returns the budget left."""
    if not contacts:
        return budget
    history = campaign_history(
        campaign.id, contacts[0].id, contacts[-1].id, session=session, only=[c.id for c in contacts]
    )
    facts = contact_facts(contacts, session=session)
    pending = contacts_with_pending_invitations(
        [c.id for c in contacts], except_campaign=None, session=session
    )
    clock = CampaignClock(campaign.id, campaign.created_at)
    rows = []
    skips: list[tuple[int, int, Skip]] = []
    for contact in contacts:
        count, last_due = history.get(contact.id, (0, None))
        decision = decide(
            clock,
            definition,
            contact_view(contact, facts[contact.id]),
            CampaignHistory(count, last_due, anchors.get(contact.id)),
            pending=contact.id in pending,
            now=now,
            global_fatigue_days=rules.min_days_between_surveys,
        )
        if decision.outcome is Outcome.SKIP:
            assert decision.skip is not None
            skips.append((campaign.id, contact.id, decision.skip))
            stats.skip(decision.skip.reason)
            continue
        if decision.outcome is not Outcome.PLAN:
            continue
        assert decision.due_at is not None
        if budget is not None and budget <= 0:
            break  # the daily target is reached; the rest stay due for tomorrow
        row = invitation_row(
            campaign,
            definition,
            contact,
            due=decision.due_at,
            now=now,
            rules=rules,
            dedupe_key=f"{campaign.id}:{contact.id}:r{decision.cycle}",
        )
        if not is_sampled(definition.sample_rate, campaign.id, contact.id, decision.cycle):
            # The cycle still advances (a cancelled row marks it), so the contact is not redrawn daily.
            row.update(state=InvitationState.CANCELLED, last_error="not sampled this cycle")
            skip = Skip(SkipReason.NOT_SAMPLED, f"not drawn by the {definition.sample_rate:.0%} sample")
            skips.append((campaign.id, contact.id, skip))
            stats.skip(skip.reason)
        else:
            stats.planned += 1
            if budget is not None:
                budget -= 1
        rows.append(row)
    inserted = insert_invitations(rows, session=session)
    for row in rows:
        if row["contact_id"] not in inserted:  # planned elsewhere meanwhile
            skips.append((campaign.id, row["contact_id"], _pending_elsewhere()))
            stats.skip(SkipReason.PENDING)
            if row["state"] is InvitationState.PLANNED:
                stats.planned -= 1
    record_skips(skips, at=now, session=session)
    return budget


def _skip_at_planning(
    definition: CampaignDefinition, facts: ContactFacts, *, due: datetime, rules: PlanningRules
) -> Skip | None:
    return skip_at(definition, facts, at=due, global_fatigue_days=rules.min_days_between_surveys)


def campaign_history(
    campaign_id: int, low: int, high: int, *, session: Session, only: Sequence[int] | None = None
) -> dict[int, tuple[int, datetime]]:
    """Per contact with an id in [low, high] (and in `only`, when given): how many invitations this campaign
    has made, and the last one's due time."""
    query = select(Invitation.contact_id, func.count(), func.max(Invitation.due_at)).where(
        Invitation.campaign_id == campaign_id, Invitation.contact_id.between(low, high)
    )
    if only is not None and len(only) <= 1000:  # the contacts a set-based range left over: a few
        query = query.where(Invitation.contact_id.in_(only))
    rows = session.execute(query.group_by(Invitation.contact_id))
    return {contact_id: (count, last_due) for contact_id, count, last_due in rows}


def event_anchors(definition: CampaignDefinition, *, session: Session) -> dict[int, datetime]:
    """First occurrence of the campaign's event per contact, plus the delay: when the first survey is due."""
    rows = session.execute(
        select(Event.contact_id, func.min(Event.occurred_at))
        .where(Event.name == definition.event)
        .group_by(Event.contact_id)
    )
    return {contact_id: first + definition.delay for contact_id, first in rows}


def daily_budget(
    campaign: Campaign, definition: CampaignDefinition, now: datetime, *, session: Session
) -> int | None:
    if definition.daily_target is None:
        return None
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    planned_today = session.scalar(
        select(func.count())
        .select_from(Invitation)
        .where(
            Invitation.campaign_id == campaign.id,
            Invitation.created_at >= day_start,
            Invitation.state != InvitationState.CANCELLED,
        )
    )
    return max(definition.daily_target - (planned_today or 0), 0)


def contact_chunks(db: Database) -> Iterator[Sequence[Contact]]:
    """All contacts in id order, a chunk per transaction, so memory stays flat over any number of contacts."""
    after = 0
    while True:
        with db.transaction() as session:
            chunk = session.scalars(
                select(Contact).where(Contact.id > after).order_by(Contact.id).limit(CHUNK)
            ).all()
            session.expunge_all()
        if not chunk:
            return
        yield chunk
        after = chunk[-1].id


# --- events (transactional campaigns) ----------------------------------------------------------------------


def plan_for_event(
    event: Event, contact: Contact, *, now: datetime, rules: PlanningRules, session: Session
) -> list[dict[str, str]]:
    """Plan the campaigns triggered by `event`; returns one outcome per matching campaign."""
    campaigns = session.scalars(
        select(Campaign)
        .where(Campaign.event == event.name, Campaign.status == CampaignStatus.ACTIVE)
        .order_by(Campaign.id)
    ).all()
    outcomes = []
    for campaign in campaigns:
        definition = definition_from_json(campaign.definition)
        skip = _event_skip(campaign, definition, event, contact, now=now, rules=rules, session=session)
        if skip is not None:
            record_skip(campaign.id, contact.id, skip, at=now, session=session)
            outcomes.append(
                {
                    "campaign": campaign.name,
                    "outcome": "skipped",
                    "reason": skip.reason,
                    "detail": skip.detail,
                }
            )
            continue
        row = invitation_row(
            campaign,
            definition,
            contact,
            due=event.occurred_at + definition.delay,
            now=now,
            rules=rules,
            dedupe_key=f"{campaign.id}:{contact.id}:e{event.id}",
            event_id=event.id,
        )
        if not insert_invitations([row], session=session):  # planned elsewhere at the same moment
            skip = _pending_elsewhere()
            record_skip(campaign.id, contact.id, skip, at=now, session=session)
            outcomes.append(
                {
                    "campaign": campaign.name,
                    "outcome": "skipped",
                    "reason": skip.reason,
                    "detail": skip.detail,
                }
            )
            continue
        outcomes.append(
            {"campaign": campaign.name, "outcome": "planned", "due_at": row["due_at"].isoformat()}
        )
    return outcomes


def _event_skip(
    campaign: Campaign,
    definition: CampaignDefinition,
    event: Event,
    contact: Contact,
    *,
    now: datetime,
    rules: PlanningRules,
    session: Session,
) -> Skip | None:
    if contact.test or not definition.audience.matches(contact.properties, contact.created_at):
        return Skip(SkipReason.AUDIENCE, "not in the campaign's audience")
    window_start = event.occurred_at - timedelta(days=definition.dedupe_days)
    recent = session.scalar(
        select(func.max(Invitation.created_at)).where(
            Invitation.campaign_id == campaign.id,
            Invitation.contact_id == contact.id,
            Invitation.created_at >= window_start,
        )
    )
    if recent is not None:
        return Skip(
            SkipReason.DUPLICATE_EVENT,
            f"already planned on {recent:%Y-%m-%d}; one survey per {definition.dedupe_days} days per contact",
        )
    facts = contact_facts([contact], session=session)[contact.id]
    due = max(event.occurred_at + definition.delay, now)
    skip = _skip_at_planning(definition, facts, due=due, rules=rules)
    if skip is not None:
        return skip
    if contacts_with_pending_invitations([contact.id], except_campaign=None, session=session):
        return _pending_elsewhere()
    if not is_sampled(definition.sample_rate, campaign.id, contact.id, f"e{event.id}"):
        return Skip(SkipReason.NOT_SAMPLED, f"not drawn by the {definition.sample_rate:.0%} sample")
    return None
