"""Campaign rows: applying definitions from a file, listing with counts, pausing and resuming."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.definitions.json_codec import definition_to_json
from campaigns.definitions.model import CampaignDefinition
from storage.enums import CampaignStatus, InvitationState
from storage.tables import Campaign, Invitation, Response
from storage.types import utcnow


@dataclass(frozen=True)
class CampaignSummary:
    id: int
    name: str
    kind: str
    status: CampaignStatus
    event: str | None
    counts: dict[str, int]
    responses: int
    anonymous: bool = False  # eNPS: answers are shown without identity, in groups of 5 or more


class AnonymityKept(ValueError):
    """A file would turn `anonymous` off for a campaign that has it: refused, nothing is applied."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name}: `anonymous: true` cannot be taken back; its answers were given on the promise that nobody "
            "sees who gave them (start a new campaign under another name instead)"
        )


def apply_definitions(
    definitions: Sequence[CampaignDefinition], *, session: Session, now: datetime | None = None
) -> list[tuple[str, str]]:
    """Create or update campaigns by name; returns (name, "created" | "updated" | "unchanged").

    AnonymityKept, before anything changes, when a definition drops `anonymous` from a campaign that has it."""
    results = []
    found = {
        definition.name: session.scalar(select(Campaign).where(Campaign.name == definition.name))
        for definition in definitions
    }
    for definition in definitions:
        stored = found[definition.name]
        if (
            stored is not None
            and (stored.definition or {}).get("anonymous") is True
            and not definition.anonymous
        ):
            raise AnonymityKept(definition.name)
    for definition in definitions:
        data = definition_to_json(definition)
        campaign = found[definition.name]
        if campaign is None:
            at = now or utcnow()
            session.add(
                Campaign(
                    name=definition.name,
                    kind=definition.kind,
                    event=definition.event,
                    definition=data,
                    created_at=at,
                    updated_at=at,
                )
            )
            results.append((definition.name, "created"))
        elif campaign.definition == data:
            results.append((definition.name, "unchanged"))
        else:
            campaign.kind, campaign.event, campaign.definition = definition.kind, definition.event, data
            campaign.last_planned_at = None  # the audience may have changed: rescan at the next tick
            results.append((definition.name, "updated"))
    session.flush()
    return results


def get_campaign(name: str, *, session: Session) -> Campaign | None:
    return session.scalar(select(Campaign).where(Campaign.name == name))


def set_status(name: str, status: CampaignStatus, *, session: Session) -> Campaign | None:
    campaign = get_campaign(name, session=session)
    if campaign is not None:
        campaign.status = status
    return campaign


def summaries(*, session: Session) -> list[CampaignSummary]:
    counts: dict[int, dict[str, int]] = {}
    for campaign_id, state, count in session.execute(
        select(Invitation.campaign_id, Invitation.state, func.count()).group_by(
            Invitation.campaign_id, Invitation.state
        )
    ):
        counts.setdefault(campaign_id, {})[InvitationState(state).value] = count
    responses: dict[int | None, int] = {
        campaign_id: count
        for campaign_id, count in session.execute(
            select(Response.campaign_id, func.count()).group_by(Response.campaign_id)
        )
    }
    return [
        CampaignSummary(
            id=c.id,
            name=c.name,
            kind=c.kind.value,
            status=c.status,
            event=c.event,
            counts=counts.get(c.id, {}),
            responses=responses.get(c.id, 0),
            anonymous=(c.definition or {}).get("anonymous") is True,
        )
        for c in session.scalars(select(Campaign).order_by(Campaign.name))
    ]
