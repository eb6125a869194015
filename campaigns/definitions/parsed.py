"""A campaign's definition, parsed once per version of it rather than once per message.

A reply at a campaign's peak needs its campaign's wording and settings; parsing the stored JSON into a
definition each time was a good part of a reply's work. The cache is keyed by the stored JSON text itself (read
as text, not decoded): a definition applied from the campaign file, by this process or another, is new text and
so parsed anew, with nothing to invalidate; the same text in another database is the same definition. Within
one transaction a campaign is read once (the session remembers it), so a reply and its follow-up use the same
version.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from threading import Lock

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from campaigns.definitions.json_codec import definition_from_json
from campaigns.definitions.model import CampaignDefinition
from storage.tables import Campaign

# Versions kept parsed: every campaign's current one with room for a few being changed.
CACHED_VERSIONS = 256
_SESSION_KEY = "campaigns.definitions.parsed"

_parsed: OrderedDict[str, CampaignDefinition] = OrderedDict()
_lock = Lock()


def campaign_definition(campaign_id: int | None, *, session: Session) -> CampaignDefinition | None:
    """The definition of campaign `campaign_id` as stored now; None without one (or if the campaign is gone)."""
    if campaign_id is None:
        return None
    seen: dict[int, CampaignDefinition | None] = session.info.setdefault(_SESSION_KEY, {})
    if campaign_id not in seen:
        stored = session.scalar(select(cast(Campaign.definition, Text)).where(Campaign.id == campaign_id))
        seen[campaign_id] = _parse(stored) if stored else None
    return seen[campaign_id]


def remember_definition(campaign_id: int, stored: str | None, *, session: Session) -> None:
    """Take campaign `campaign_id`'s stored definition as read by the caller's query in this transaction (a
    reply reads it joined to its invitation): :func:`campaign_definition` then needs no statement of its own."""
    seen: dict[int, CampaignDefinition | None] = session.info.setdefault(_SESSION_KEY, {})
    if campaign_id not in seen:
        seen[campaign_id] = _parse(stored) if stored else None


def _parse(stored: str) -> CampaignDefinition | None:
    with _lock:
        definition = _parsed.get(stored)
        if definition is not None:
            _parsed.move_to_end(stored)
            return definition
    data = json.loads(stored)
    if not data:
        return None
    definition = definition_from_json(data)
    with _lock:
        _parsed[stored] = definition
        while len(_parsed) > CACHED_VERSIONS:
            _parsed.popitem(last=False)
    return definition
