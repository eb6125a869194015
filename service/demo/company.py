"""A synthetic company for `nps demo`: contacts across plans, regions, accounts and the shipped languages, a year
of answers with planted effects, and follow-ups in every state.

Planted, so that the commands can be seen to find them (tests/service/demo/test_demo.py checks they do):
- drivers: the basic plan scores far below the rest; APAC is lower than the other regions;
- themes: detractors write about slow support and billing errors, promoters about how easy it is to use;
- trend: a dip in the summer months and a recovery after it;
- loop: most detractors are touched within 48 hours, some late, some never, most resolved.
Deterministic for a given seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.store import apply_definitions
from campaigns.followups.opening import due_at
from campaigns.scores.nps import categorize
from storage.db import Database
from storage.enums import Category, Channel, ContactMethod, FollowUpStatus, InvitationState
from storage.tables import Campaign, Contact, FollowUp, Invitation, Response

CAMPAIGN = """
campaigns:
  - name: quarterly-pulse
    kind: relationship
    interval_days: 90
    channels: [email, sms]
    brand: Acme Cloud
"""
PLANS = (("basic", 0.45, -1.6), ("pro", 0.4, 0.0), ("enterprise", 0.15, 0.6))  # name, share, score shift
REGIONS = (("EU", 0.4, 0.0), ("NA", 0.4, 0.2), ("APAC", 0.2, -0.9))
ROLES = ("admin", "developer", "finance", "manager")
LOCALES = ("en", "en", "en", "de", "fr", "es", "pt", "it", "nl", "fi", "vi", "zh-Hans")
MANAGERS = ("U0DEMOANA", "U0DEMOBO", "U0DEMOCY")
COMMENTS: dict[Category, dict[str, tuple[str, ...]]] = {
    Category.DETRACTOR: {
        "en": (
            "Support is slow, I waited days for an answer",
            "Billing errors again this month",
            "Slow support and billing errors",
        ),
        "de": ("Der Support ist langsam",),
        "fr": ("Le support est lent",),
        "es": ("El soporte es lento",),
        "zh-Hans": ("客服回复太慢",),
    },
    Category.PASSIVE: {"en": ("Fine, but the reports could be better", "Does the job")},
    Category.PROMOTER: {
        "en": ("Easy to use, the team loves it", "So easy to use", "Great support team, easy to use"),
        "de": ("Sehr einfach zu bedienen",),
        "fr": ("Très facile à utiliser",),
        "zh-Hans": ("简单易用",),
    },
}


@dataclass(frozen=True)
class DemoSize:
    contacts: int = 3000
    responses: int = 4000
    accounts: int = 150


def _pick(rng: random.Random, table: tuple[tuple[str, float, float], ...]) -> tuple[str, float]:
    name, _, shift = rng.choices(table, weights=[w for _, w, _ in table])[0]
    return name, shift


def _score(rng: random.Random, shift: float, when: datetime, start: datetime) -> int:
    """Around 9 for a pro customer in the EU, minus a summer dip, plus the segment's shift, clipped to 0-10."""
    day = (when - start).days
    summer = -0.8 * max(0.0, math.sin((day - 120) / 365 * 2 * math.pi)) if 120 <= day <= 300 else 0.0
    return max(0, min(10, round(rng.gauss(9.0 + shift + summer, 1.5))))


def _comment(rng: random.Random, category: Category, locale: str) -> str | None:
    if rng.random() > 0.6:
        return None
    texts = COMMENTS[category]
    return rng.choice(texts.get(locale) or texts["en"])


def _contacts(rng: random.Random, size: DemoSize, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for n in range(size.contacts):
        plan, _ = _pick(rng, PLANS)
        region, _ = _pick(rng, REGIONS)
        rows.append(
            {
                "external_id": f"demo-{n:05d}",
                "name": f"Customer {n}",
                "email": f"customer{n}@example.com",
                "phone": None,
                "locale": rng.choice(LOCALES),
                "timezone": "UTC",
                "properties": {
                    "plan": plan,
                    "region": region,
                    "account": f"Account {rng.randrange(size.accounts):03d}",
                    "role": rng.choice(ROLES),
                },
                "created_at": now - timedelta(days=400),
                "updated_at": now - timedelta(days=400),
            }
        )
    return rows


def _follow_up(rng: random.Random, response_id: int, answered: datetime, now: datetime) -> dict[str, object]:
    """Touched within a day mostly, sometimes late, sometimes never; most of the touched ones resolved."""
    row: dict[str, object] = {
        "response_id": response_id,
        "status": FollowUpStatus.OPEN,
        "due_at": due_at(Category.DETRACTOR.value, answered),
        "created_at": answered,
        "updated_at": answered,
    }
    luck = rng.random()
    if luck < 0.12 or answered > now - timedelta(hours=6):
        return row
    first = answered + timedelta(hours=rng.uniform(1, 24) if luck < 0.8 else rng.uniform(50, 120))
    who = rng.choice(MANAGERS)
    row.update(status=FollowUpStatus.ACKNOWLEDGED, acknowledged_by=who, acknowledged_at=min(first, now))
    if rng.random() < 0.75 and first + timedelta(hours=2) < now:
        done = min(first + timedelta(hours=rng.uniform(2, 72)), now)
        row.update(
            status=FollowUpStatus.RESOLVED,
            resolved_by=who,
            resolved_at=done,
            outcome_note="Called back; fixed the issue",
            contact_method=ContactMethod.PHONE_CALL,
        )
    return row


def build_company(db: Database, *, now: datetime, seed: int = 7, size: DemoSize = DemoSize()) -> int:
    """Fill an empty, migrated database; the number of responses written."""
    rng = random.Random(seed)
    start = now - timedelta(days=365)
    with db.transaction() as session:
        apply_definitions(parse_campaign_file(CAMPAIGN).campaigns, session=session, now=now)
        campaign_id = session.query(Campaign.id).filter(Campaign.name == "quarterly-pulse").scalar()
        session.execute(insert(Contact), _contacts(rng, size, now))
        contacts = session.query(Contact.id, Contact.locale, Contact.properties).all()
        for n in range(size.responses):
            contact_id, locale, properties = rng.choice(contacts)
            shift = (
                dict((p, s) for p, _, s in PLANS)[properties["plan"]]
                + dict((r, s) for r, _, s in REGIONS)[properties["region"]]
            )
            answered = start + timedelta(seconds=rng.uniform(0, 365 * 86400))
            score = _score(rng, shift, answered, start)
            category = categorize(score)
            channel = Channel.EMAIL if rng.random() < 0.7 else Channel.SMS
            invitation = Invitation(
                contact_id=contact_id,
                campaign_id=campaign_id,
                channel=channel,
                state=InvitationState.RESPONDED,
                due_at=answered - timedelta(hours=3),
                token=f"demo{n:06d}",
                sent_at=answered - timedelta(hours=3),
                delivered_at=answered - timedelta(hours=3),
                responded_at=answered,
            )
            session.add(invitation)
            session.flush()
            comment = _comment(rng, category, locale or "en")
            response = Response(
                invitation_id=invitation.id,
                contact_id=contact_id,
                campaign_id=campaign_id,
                channel=channel,
                score=score,
                category=category,
                comment=comment,
                contact_snapshot=dict(properties),
                answered_at=answered,
                commented_at=answered if comment else None,
            )
            session.add(response)
            if category is Category.DETRACTOR:
                session.flush()
                session.add(FollowUp(**_follow_up(rng, response.id, answered, now)))
    return size.responses
