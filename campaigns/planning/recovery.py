"""Recovery re-surveys: a campaign's `recovery: {after_days: N}` asks a person again N days after the follow-up
of their answer was resolved, to learn whether closing the loop changed their mind.

The scheduler's planning job calls :func:`plan_recoveries` every minute. For each resolved follow-up of such a
campaign without a re-survey it writes one invitation (`invitations.recovery_of_follow_up_id`, unique) due N days
after the resolution, moved into the send window, through the same outbox the dispatcher sends from: opt-outs,
the contact's channel, quiet hours and the send window all apply, then and again right before sending.

Decided rules, in the campaign file documentation too:

- The fatigue rule does not hold a re-survey back (the person was surveyed days ago; asking again is the point).
  It counts as a survey afterwards, for the fatigue rule and for the campaign's interval: the next regular
  survey of the campaign is due `interval_days` after the re-survey.
- A regular survey of the same campaign still waiting to go out is replaced (cancelled) by the re-survey; while
  the re-survey waits, the contact has a pending survey, so no campaign plans another one for them.
  A regular survey of the campaign that went out after the resolution (being sent as the case was closed)
  takes the re-survey's place: it asks the same question; the re-survey row is cancelled, decided once. A survey of
  another campaign already waiting is left alone; the re-survey is planned once it has gone.
- A person who cannot be asked when it is planned (opted out, no usable channel) gets a cancelled re-survey row
  and a skip, so the decision is made once.
- Exactly once per follow-up: the unique column refuses a second row whoever writes it (two planners insert
  with ON CONFLICT DO NOTHING). Reopening the follow-up cancels a re-survey not yet sent (:func:`cancel_recovery`);
  resolving it again replaces that cancelled row with a new one, due N days after the new resolution. A
  re-survey a worker has claimed is stopped by the dispatcher's last look before the send
  (campaigns.dispatch.presend) and cancelled the same way. One that was sent stays, and no second one is planned.
- The answer to a re-survey may open a follow-up of its own; resolving that one plans no further re-survey
  (one recovery attempt per loop, not a survey every N days for as long as the person stays unhappy).
- Resolutions older than N days plus :data:`GRACE` are not looked at (the campaign may have turned recovery on
  long after; such a re-survey would no longer be about the follow-up).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from campaigns.definitions.json_codec import definition_from_json
from campaigns.definitions.model import CampaignDefinition
from campaigns.events import Event, emit_after_commit
from campaigns.followups.alert_queue import needs_posting
from campaigns.planning import eligibility
from campaigns.planning.facts import contact_facts
from campaigns.planning.planner import PlanningRules, PlanStats, invitation_row
from campaigns.planning.skips import record_skip
from storage.db import Database
from storage.enums import AlertKind, CampaignStatus, Category, FollowUpStatus, InvitationState
from storage.tables import Campaign, Contact, FollowUp, Invitation, Response, SlackAlert

log = logging.getLogger(__name__)

GRACE = timedelta(days=30)
REOPENED = "the follow-up was reopened before the re-survey went out"
RECOVERY_OFF = "the campaign's recovery was turned off before the re-survey went out"
SURVEYED_SINCE = "the campaign surveyed the person again after the resolution"


def replaced_by(follow_up_id: int) -> str:
    return f"replaced by the recovery re-survey of follow-up {follow_up_id}"


@dataclass(frozen=True)
class _Due:
    follow_up_id: int
    response_id: int
    resolved_at: datetime
    contact_id: int


def plan_recoveries(db: Database, *, now: datetime, rules: PlanningRules) -> PlanStats:
    """Plan the re-survey of every recently resolved detractor follow-up of a campaign with `recovery` that has none."""
    stats = PlanStats()
    with db.transaction() as session:
        campaigns = session.scalars(select(Campaign)).all()
    definitions = {campaign.id: definition_from_json(campaign.definition) for campaign in campaigns}
    off = [campaign_id for campaign_id, d in definitions.items() if d.recovery_after_days is None]
    if off:
        with db.transaction() as session:
            _cancel_planned(session, off, now)
    for campaign in campaigns:
        definition = definitions[campaign.id]
        if definition.recovery_after_days is None or campaign.status != CampaignStatus.ACTIVE:
            continue
        with db.transaction() as session:
            for due in _without_re_survey(campaign.id, definition.recovery_after_days, now, session=session):
                _plan_one(session, campaign, definition, due, now=now, rules=rules, stats=stats)
    return stats


def _cancel_planned(session: Session, campaign_ids: list[int], now: datetime) -> None:
    """These campaigns no longer have `recovery`: its re-surveys still waiting are cancelled (a claimed one is
    stopped by the dispatcher's last look), and stay cancelled if it is turned on again."""
    session.execute(
        update(Invitation)
        .where(
            Invitation.campaign_id.in_(campaign_ids),
            Invitation.recovery_of_follow_up_id.is_not(None),
            Invitation.state == InvitationState.PLANNED,
        )
        .values(state=InvitationState.CANCELLED, last_error=RECOVERY_OFF, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _without_re_survey(campaign_id: int, after_days: int, now: datetime, *, session: Session) -> list[_Due]:
    """Resolved follow-ups of the campaign's answers with no re-survey, or only one cancelled by a reopening."""
    has_re_survey = exists().where(
        Invitation.recovery_of_follow_up_id == FollowUp.id,
        ~((Invitation.state == InvitationState.CANCELLED) & (Invitation.last_error == REOPENED)),
    )
    rows = session.execute(
        select(FollowUp.id, FollowUp.response_id, FollowUp.resolved_at, Response.contact_id)
        .join(Response, Response.id == FollowUp.response_id)
        .where(
            Response.campaign_id == campaign_id,
            Response.contact_id.is_not(None),
            Response.test.is_(False),
            # `follow_up` may open cases for passives and promoters too; recovery (and its share) is detractors'.
            Response.category == Category.DETRACTOR,
            FollowUp.status == FollowUpStatus.RESOLVED,
            FollowUp.resolved_at >= now - timedelta(days=after_days) - GRACE,
            ~has_re_survey,
            ~_answers_a_re_survey(),
        )
        .order_by(FollowUp.id)
    )
    return [
        _Due(follow_up_id, response_id, resolved_at, contact_id)
        for follow_up_id, response_id, resolved_at, contact_id in rows
        if resolved_at is not None and contact_id is not None
    ]


def _answers_a_re_survey() -> ColumnElement[bool]:
    """The answer was given to a re-survey: its own follow-up is not re-surveyed again (one recovery per loop)."""
    asked_again = aliased(Invitation)
    return exists().where(
        asked_again.id == Response.invitation_id, asked_again.recovery_of_follow_up_id.is_not(None)
    )


def _plan_one(
    session: Session,
    campaign: Campaign,
    definition: CampaignDefinition,
    due: _Due,
    *,
    now: datetime,
    rules: PlanningRules,
    stats: PlanStats,
) -> None:
    assert definition.recovery_after_days is not None
    if not _still_resolved(session, due):
        return  # reopened (or resolved again) since it was read: the next run sees it as it is now
    contact = session.get(Contact, due.contact_id)
    if contact is None:
        return
    # A re-survey cancelled by a reopening makes way for the one of the new resolution (never one that was sent).
    session.execute(
        delete(Invitation).where(
            Invitation.recovery_of_follow_up_id == due.follow_up_id,
            Invitation.state == InvitationState.CANCELLED,
            Invitation.last_error == REOPENED,
            Invitation.sent_at.is_(None),
        )
    )
    row = invitation_row(
        campaign,
        definition,
        contact,
        due=due.resolved_at + timedelta(days=definition.recovery_after_days),
        now=now,
        rules=rules,
        dedupe_key=f"{campaign.id}:{contact.id}:f{due.follow_up_id}",
    )
    row["recovery_of_follow_up_id"] = due.follow_up_id
    facts = contact_facts([contact], session=session)[contact.id]
    skip = eligibility.check(facts, channels=definition.channels, at=row["due_at"], fatigue=0)
    if skip is not None:
        row.update(state=InvitationState.CANCELLED, last_error=f"{skip.reason}: {skip.detail}")
    elif _surveyed_since(session, campaign.id, contact.id, due):
        row.update(state=InvitationState.CANCELLED, last_error=SURVEYED_SINCE)
        _insert(session, row)
        return
    else:
        _replace_regular_survey(session, campaign.id, contact.id, due.follow_up_id, now)
    if not _insert(session, row):
        return  # planned by another planner meanwhile, or another campaign's survey is waiting: next time
    if skip is not None:
        record_skip(campaign.id, contact.id, skip, at=now, session=session)
        stats.skip(skip.reason)
        return
    stats.planned += 1
    _mark_case(session, due.response_id, now)
    emit_after_commit(
        session,
        log,
        Event.RECOVERY_PLANNED,
        follow_up=due.follow_up_id,
        campaign=campaign.name,
        due_at=row["due_at"].isoformat(),
    )


def _still_resolved(session: Session, due: _Due) -> bool:
    """Take the follow-up's row lock (a write that changes nothing) while it is still resolved at `resolved_at`.

    Reopening updates the same row, so it waits for this transaction, and then finds and cancels the re-survey
    planned here; or it went first, and nothing is planned for an open case.
    """
    locked = session.execute(
        update(FollowUp)
        .where(
            FollowUp.id == due.follow_up_id,
            FollowUp.status == FollowUpStatus.RESOLVED,
            FollowUp.resolved_at == due.resolved_at,
        )
        .values(updated_at=FollowUp.updated_at)
        .returning(FollowUp.id)
        .execution_options(synchronize_session=False)
    ).first()
    return locked is not None


def _surveyed_since(session: Session, campaign_id: int, contact_id: int, due: _Due) -> bool:
    """A regular survey of the campaign went out after the resolution (it was being sent, or was sent, before
    this planning run): it asks the same question already, so the re-survey is not planned (decided once).
    The survey the detractor answered is not one of them, whenever it was sent."""
    answered = select(Response.invitation_id).where(
        Response.id == due.response_id, Response.invitation_id.is_not(None)
    )
    return bool(
        session.scalar(
            select(
                exists().where(
                    Invitation.campaign_id == campaign_id,
                    Invitation.contact_id == contact_id,
                    Invitation.recovery_of_follow_up_id.is_(None),
                    Invitation.sent_at >= due.resolved_at,
                    Invitation.id.not_in(answered),
                )
            )
        )
    )


def _replace_regular_survey(
    session: Session, campaign_id: int, contact_id: int, follow_up_id: int, now: datetime
) -> None:
    """Cancel the campaign's regular survey of the contact still waiting to go out (compare-and-set on PLANNED)."""
    session.execute(
        update(Invitation)
        .where(
            Invitation.campaign_id == campaign_id,
            Invitation.contact_id == contact_id,
            Invitation.state == InvitationState.PLANNED,
            Invitation.recovery_of_follow_up_id.is_(None),
        )
        .values(state=InvitationState.CANCELLED, last_error=replaced_by(follow_up_id), updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _insert(session: Session, row: dict[str, object]) -> bool:
    """Insert the re-survey; False when a unique rule refused it (one re-survey per follow-up, one pending
    survey per contact), without failing the transaction."""
    dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(Invitation).values(row).on_conflict_do_nothing().returning(Invitation.id)
    return session.scalar(statement) is not None


def _mark_case(session: Session, response_id: int, now: datetime) -> None:
    """The case's Slack alert is edited to say when the re-survey goes out."""
    alert = session.scalar(
        select(SlackAlert).where(
            SlackAlert.response_id == response_id, SlackAlert.kind == AlertKind.DETRACTOR
        )
    )
    if alert is not None:
        needs_posting(alert, now, session)


def re_survey_sent(session: Session, follow_up_id: int, now: datetime) -> None:
    """The re-survey went out (the dispatcher settles it): the case's alert is edited to say so."""
    response_id = session.scalar(select(FollowUp.response_id).where(FollowUp.id == follow_up_id))
    if response_id is not None:
        _mark_case(session, response_id, now)


def cancel_recovery(session: Session, follow_up_id: int, now: datetime) -> bool:
    """The follow-up was reopened: cancel its re-survey unless a worker has claimed or sent it."""
    cancelled = session.execute(
        update(Invitation)
        .where(
            Invitation.recovery_of_follow_up_id == follow_up_id,
            Invitation.state == InvitationState.PLANNED,
        )
        .values(state=InvitationState.CANCELLED, last_error=REOPENED, updated_at=now)
        .returning(Invitation.id)
        .execution_options(synchronize_session=False)
    ).first()
    return cancelled is not None
