"""`POST /api/v1/events`: a transactional trigger (order delivered, ticket closed, ...) for one contact."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.datastructures import State

from campaigns.contacts.store import upsert_contact
from campaigns.contacts.validation import ContactValidationError, property_limit_errors
from campaigns.planning.planner import plan_for_event
from service.container import Container
from service.web.api.auth import Actor, KeyCheckedRoute, get_container
from service.web.api.contacts import ContactIn, field_errors, validated_contact
from service.web.api.responses import ERRORS
from storage.audit import record_audit
from storage.enums import AuditAction, AuditEntity, CampaignStatus
from storage.tables import Campaign, Event

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"], route_class=KeyCheckedRoute)

EVENT_NAME = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
EARLIEST_EVENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_EVENT = datetime(2100, 1, 1, tzinfo=UTC)


# PostgreSQL text and JSONB cannot hold NUL; refused here as a field error, where it would otherwise be a 500.
StorableText = Annotated[str, Field(pattern=r"^[^\x00]*$")]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str = Field(pattern=EVENT_NAME, description="Trigger name, e.g. order_delivered")
    contact: ContactIn = Field(description="Upserted by external_id before planning")
    occurred_at: datetime | None = Field(
        None, description="ISO 8601 with an offset, in the years 1970 to 2099; default: now"
    )
    properties: dict[StorableText, StorableText | int | float | bool] = Field(default_factory=dict)
    idempotency_key: StorableText | None = Field(
        None, min_length=1, max_length=255, description="The same key again returns the first outcome"
    )

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-11-23T10:00:00Z")
        # Year 1 or 9999 would overflow the planner's arithmetic (the event plus a delay, minus dedupe days).
        if value is not None and not EARLIEST_EVENT <= value < LATEST_EVENT:
            raise ValueError(f"must be between {EARLIEST_EVENT:%Y} and {LATEST_EVENT.year - 1}")
        return value


class CampaignOutcome(BaseModel):
    campaign: str
    outcome: str = Field(description="planned | skipped")
    due_at: str | None = None
    reason: str | None = None
    detail: str | None = None


class EventOut(BaseModel):
    event_id: int
    contact_external_id: str
    duplicate: bool = False
    campaigns: list[CampaignOutcome]
    warnings: list[str] = Field(
        default_factory=list, description="e.g. that no active campaign listens to this event"
    )


@router.post(
    "/events",
    response_model=EventOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": EventOut, "description": "A replay of an idempotency key"}, **ERRORS},
)
def receive_event(
    body: EventIn,
    request: Request,
    response: Response,
    actor: Actor,
    container: Annotated[Container, Depends(get_container)],
) -> EventOut:
    """Upsert the contact, store the event and plan the campaigns it triggers."""
    if body.idempotency_key is not None:
        replay = _replay(container, body.idempotency_key, response)
        if replay is not None:
            return replay
    limit_errors = property_limit_errors(body.properties.items())
    if limit_errors:
        raise field_errors(ContactValidationError(limit_errors))
    item = validated_contact(body.contact, "contact")
    now = container.clock.now()
    try:
        with container.db.transaction() as session:
            contact, _ = upsert_contact(item, session=session, require_channel=True, now=now)
            event = Event(
                name=body.event,
                contact_id=contact.id,
                occurred_at=body.occurred_at or now,
                received_at=now,
                properties=dict(body.properties),
                idempotency_key=body.idempotency_key,
            )
            session.add(event)
            session.flush()
            outcomes = plan_for_event(
                event, contact, now=now, rules=container.planning_rules, session=session
            )
            warnings = [] if outcomes else _unheard(body.event, session)
            result = {
                "event_id": event.id,
                "contact_external_id": contact.external_id,
                "campaigns": outcomes,
                "warnings": warnings,
            }
            event.outcome = result
            record_audit(
                session=session,
                actor=actor,
                action=AuditAction.EVENT_RECEIVED,
                entity_type=AuditEntity.EVENT,
                entity_id=event.id,
                name=body.event,
            )
    except ContactValidationError as error:
        raise field_errors(error, "contact") from None
    except IntegrityError:
        # The same idempotency key arrived concurrently and the other request stored it first.
        if body.idempotency_key is not None:
            replay = _replay(container, body.idempotency_key, response)
            if replay is not None:
                return replay
        raise
    if warnings:
        _log_once(request.app.state, body.event, warnings[0])
    return EventOut.model_validate(result)


def _unheard(name: str, session: Session) -> list[str]:
    """Why an event planned nothing when no campaign matched it: none listens, or those that do are paused."""
    listeners = session.execute(
        select(Campaign.name, Campaign.status, Campaign.event).order_by(Campaign.name)
    )
    paused, heard = [], set()
    for campaign, campaign_status, event in listeners:
        if event == name and campaign_status is not CampaignStatus.ACTIVE:
            paused.append(campaign)
        elif event and campaign_status is CampaignStatus.ACTIVE:
            heard.add(event)
    if paused:
        why = f"paused: {', '.join(paused)}"
    elif heard:
        why = f"campaigns listen to: {', '.join(sorted(heard)[:_LISTED])}"
    else:
        why = "no campaign has an event"
    return [f"no active campaign listens to the event '{name}' ({why})"]


_LISTED = 10  # event names quoted in a warning
_MAX_REMEMBERED = 1000  # event names already logged; past that, each is logged again (bounded memory)
_logged_lock = threading.Lock()


def _log_once(state: State, name: str, warning: str) -> None:
    """One log line per event name and app, not one per request: an integration may send thousands."""
    with _logged_lock:
        logged: set[str] = getattr(state, "unheard_events_logged", None) or set()
        state.unheard_events_logged = logged
        if name in logged:
            return
        if len(logged) >= _MAX_REMEMBERED:
            logged.clear()
        logged.add(name)
    log.warning("event '%s' received: %s; it is stored, and no survey is planned", name, warning)


def _replay(container: Container, key: str, response: Response) -> EventOut | None:
    with container.db.transaction() as session:
        stored: dict[str, Any] | None = session.scalar(
            select(Event.outcome).where(Event.idempotency_key == key)
        )
    if stored is None:
        return None
    response.status_code = status.HTTP_200_OK
    return EventOut.model_validate({**stored, "duplicate": True})
