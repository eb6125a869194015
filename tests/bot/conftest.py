"""Fixtures for the `/nps` query layer: a fixed clock and time zone, a seeder writing rows with the ORM,
and a Block Kit shape check shared by the formatting tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from campaigns.scores.nps import categorize
from storage.db import Database
from storage.enums import CampaignKind, Channel, InvitationState
from storage.tables import Campaign, Contact, Invitation, Response

# A Thursday afternoon; Berlin is UTC+2 then, so local midnights are 22:00 UTC the day before.
NOW = datetime(2026, 5, 14, 15, 30, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


class Seeder:
    """Writes campaigns, contacts, invitations and responses directly, one transaction per call."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ids = itertools.count(1)

    def campaign(self, name: str) -> int:
        with self.db.transaction() as session:
            campaign = Campaign(name=name, kind=CampaignKind.RELATIONSHIP)
            session.add(campaign)
            session.flush()
            return campaign.id

    def contact(self, name: str | None = None, **properties: str) -> int:
        with self.db.transaction() as session:
            contact = Contact(external_id=f"c{next(self._ids)}", name=name, properties=properties)
            session.add(contact)
            session.flush()
            return contact.id

    def responses(
        self,
        scores: list[int],
        *,
        at: datetime = NOW - timedelta(days=1),
        channel: Channel = Channel.SMS,
        campaign_id: int | None = None,
        contact_id: int | None = None,
        snapshot: dict[str, Any] | None = None,
        comment: str | None = None,
        step: timedelta = timedelta(0),
    ) -> None:
        with self.db.transaction() as session:
            session.add_all(
                Response(
                    contact_id=contact_id,
                    campaign_id=campaign_id,
                    channel=channel,
                    score=score,
                    category=categorize(score).value,
                    comment=comment,
                    contact_snapshot=dict(snapshot or {}),
                    answered_at=at + i * step,
                )
                for i, score in enumerate(scores)
            )

    def mix(self, promoters: int, passives: int, detractors: int, **kwargs: Any) -> None:
        self.responses([10] * promoters + [8] * passives + [3] * detractors, **kwargs)

    def invitations(
        self,
        count: int,
        *,
        contact_id: int,
        campaign_id: int,
        sent_at: datetime = NOW - timedelta(days=2),
        channel: Channel = Channel.SMS,
        state: InvitationState = InvitationState.SENT,
        delivered: bool = False,
        responded: bool = False,
    ) -> None:
        with self.db.transaction() as session:
            for _ in range(count):
                n = next(self._ids)
                session.add(
                    Invitation(
                        contact_id=contact_id,
                        campaign_id=campaign_id,
                        channel=channel,
                        state=state,
                        due_at=sent_at,
                        token=f"tok{n}",
                        sent_at=sent_at,
                        delivered_at=sent_at + timedelta(minutes=1) if delivered else None,
                        responded_at=sent_at + timedelta(hours=1) if responded else None,
                    )
                )


@pytest.fixture
def seed(db: Database) -> Iterator[Seeder]:
    yield Seeder(db)


# --- Block Kit shapes ----------------------------------------------------------------------------------------


def _mrkdwn(obj: Any, limit: int) -> None:
    assert isinstance(obj, dict) and obj.get("type") == "mrkdwn", obj
    assert isinstance(obj.get("text"), str) and 0 < len(obj["text"]) <= limit, obj


def assert_valid_blocks(blocks: list[dict[str, Any]]) -> None:
    """The subset of Block Kit the builders use, with Slack's limits."""
    assert isinstance(blocks, list) and 0 < len(blocks) <= 50
    for block in blocks:
        kind = block.get("type")
        if kind == "divider":
            assert set(block) == {"type"}
        elif kind == "section":
            assert set(block) <= {"type", "text", "fields", "block_id"} and (
                "text" in block or "fields" in block
            )
            if "text" in block:
                _mrkdwn(block["text"], 3000)
            for field in block.get("fields", []):
                _mrkdwn(field, 2000)
            assert len(block.get("fields", [])) <= 10
        elif kind == "context":
            assert set(block) <= {"type", "elements", "block_id"} and 1 <= len(block["elements"]) <= 10
            for element in block["elements"]:
                _mrkdwn(element, 3000)
        else:
            raise AssertionError(f"unexpected block type {kind!r}")


def all_text(blocks: list[dict[str, Any]]) -> str:
    parts = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [field["text"] for field in block.get("fields", [])]
        parts += [element["text"] for element in block.get("elements", [])]
    return "\n".join(parts)
