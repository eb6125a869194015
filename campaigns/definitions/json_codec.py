"""Campaign definitions as JSON, the form the campaigns table stores them in, and back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any

from campaigns.definitions.model import Audience, CampaignDefinition, SendWindow
from campaigns.messages.catalogue import MessageTexts
from storage.enums import CampaignKind, Channel

__all__ = ["definition_from_json", "definition_to_json"]

JSON_VERSION = 1


def definition_to_json(definition: CampaignDefinition) -> dict[str, Any]:
    """A JSON-ready dict of a definition; :func:`definition_from_json` gives back an equal one.

    Durations are seconds, times "HH:MM", weekdays 0 (Monday) to 6, instants ISO 8601 with offset, and
    "messages" is locale -> {catalogue key: template}, as in the campaign file. The "version" key lets a later
    release read definitions stored by this one. Campaign texts beyond the five survey texts were added to
    "messages" without a new version: the shape is unchanged, older definitions simply have fewer keys, and a
    definition without such texts is stored exactly as before (so applying an unchanged file stays "unchanged").
    """
    d = definition
    return {
        "version": JSON_VERSION,
        "name": d.name,
        "kind": d.kind.value,
        "event": d.event,
        "delay_seconds": _seconds(d.delay),
        "interval_days": d.interval_days,
        "first_after_days": d.first_after_days,
        "dedupe_days": d.dedupe_days,
        "min_days_between_surveys": d.min_days_between_surveys,
        "audience": _audience_to_json(d.audience),
        "channels": [channel.value for channel in d.channels],
        "send_window": _window_to_json(d.send_window),
        "timezone": d.timezone,
        "remind_after_seconds": None if d.remind_after is None else _seconds(d.remind_after),
        "expires_after_seconds": _seconds(d.expires_after),
        "sample_rate": d.sample_rate,
        "daily_target": d.daily_target,
        "locale": d.locale,
        "brand": d.brand,
        "messages": {locale: _texts_to_json(texts) for locale, texts in d.messages.items()},
        # Written only when set, so that definitions stored before these fields existed compare unchanged.
        **({"slack_channel": d.slack_channel} if d.slack_channel else {}),
        **({"follow_up": list(d.follow_up)} if d.follow_up != ("detractor",) else {}),
        **({"promoter_link": d.promoter_link} if d.promoter_link else {}),
        **({"anonymous": True} if d.anonymous else {}),
        **({"recovery_after_days": d.recovery_after_days} if d.recovery_after_days else {}),
    }


def definition_from_json(data: Mapping[str, Any]) -> CampaignDefinition:
    """The definition stored by :func:`definition_to_json`; ValueError for an unknown version."""
    if data.get("version") != JSON_VERSION:
        raise ValueError(f"unsupported campaign definition version {data.get('version')!r}")
    remind = data["remind_after_seconds"]
    return CampaignDefinition(
        name=data["name"],
        kind=CampaignKind(data["kind"]),
        event=data["event"],
        delay=timedelta(seconds=data["delay_seconds"]),
        interval_days=data["interval_days"],
        first_after_days=data["first_after_days"],
        dedupe_days=data["dedupe_days"],
        min_days_between_surveys=data["min_days_between_surveys"],
        audience=_audience_from_json(data["audience"]),
        channels=tuple(Channel(channel) for channel in data["channels"]),
        send_window=_window_from_json(data["send_window"]),
        timezone=data["timezone"],
        remind_after=None if remind is None else timedelta(seconds=remind),
        expires_after=timedelta(seconds=data["expires_after_seconds"]),
        sample_rate=float(data["sample_rate"]),
        daily_target=data["daily_target"],
        locale=data["locale"],
        brand=data["brand"],
        messages={locale: _texts_from_json(texts) for locale, texts in data["messages"].items()},
        slack_channel=data.get("slack_channel"),
        promoter_link=data.get("promoter_link"),
        follow_up=tuple(data.get("follow_up", ("detractor",))),
        anonymous=data.get("anonymous") is True,
        recovery_after_days=data.get("recovery_after_days"),
    )


def _seconds(duration: timedelta) -> int | float:
    """Whole seconds as an int (every duration a campaign file can express), anything finer as a float."""
    seconds = duration.total_seconds()
    return int(seconds) if seconds.is_integer() else seconds


def _audience_to_json(audience: Audience) -> dict[str, Any]:
    return {
        "properties": {key: list(values) for key, values in audience.properties.items()},
        "created_before": audience.created_before.isoformat() if audience.created_before else None,
        "created_after": audience.created_after.isoformat() if audience.created_after else None,
    }


def _audience_from_json(data: Mapping[str, Any]) -> Audience:
    before, after = data["created_before"], data["created_after"]
    return Audience(
        properties={key: tuple(values) for key, values in data["properties"].items()},
        created_before=datetime.fromisoformat(before) if before else None,
        created_after=datetime.fromisoformat(after) if after else None,
    )


def _window_to_json(window: SendWindow) -> dict[str, Any]:
    return {"days": sorted(window.days), "start": _clock(window.start), "end": _clock(window.end)}


def _clock(moment: time) -> str:
    return moment.isoformat(timespec="minutes" if not (moment.second or moment.microsecond) else "auto")


def _window_from_json(data: Mapping[str, Any]) -> SendWindow:
    return SendWindow(
        days=frozenset(data["days"]),
        start=time.fromisoformat(data["start"]),
        end=time.fromisoformat(data["end"]),
    )


def _texts_to_json(texts: MessageTexts) -> dict[str, str]:
    """One locale's texts as a flat key -> source mapping, the shape of the campaign file."""
    return texts.as_mapping()


def _texts_from_json(data: Mapping[str, str]) -> MessageTexts:
    """Reads what :func:`_texts_to_json` wrote, including definitions stored before campaigns could set more
    than the five survey texts. A key the catalogue no longer has is kept (and never looked up)."""
    return MessageTexts.from_mapping(data)
