"""Every text a campaign would send one contact, rendered, with its SMS segments: `nps campaigns preview`.

Pure: the caller loads the campaign and the contact (or none: the sample contact of validation). The texts are
those of :mod:`campaigns.messages.texts` for the contact's locale, so the preview is what the person would get;
the invitation by SMS is shown as the first text to a number, with the opt-out line it may get
(:mod:`campaigns.messages.optout`), and its link is a short one of the real length.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from campaigns.definitions.model import CampaignDefinition
from campaigns.messages.compose import survey_url
from campaigns.messages.optout import with_opt_out
from campaigns.messages.segments import sms_segments
from campaigns.messages.templates import template_variables
from campaigns.messages.texts import contact_texts
from storage.enums import Channel

__all__ = ["PreviewText", "preview_texts"]

# What a short token looks like in a preview: as long as a real one (campaigns.planning.planner).
PREVIEW_SHORT_TOKEN = "x" * 10
# (catalogue key, what it is), in the order a person meets them; the reminder only when the campaign reminds.
SMS_TEXTS = (
    ("sms", "invitation"),
    ("sms_reminder", "reminder"),
    ("follow_up_detractor", "follow-up question to detractors"),
    ("follow_up_passive", "follow-up question to passives"),
    ("follow_up_promoter", "follow-up question to promoters"),
    ("closing_detractor", "closing to detractors"),
    ("closing_detractor_contact", "closing to detractors with an open follow-up"),
    ("closing_passive", "closing to passives"),
    ("closing_promoter", "closing to promoters"),
    ("closing_promoter_link", "closing to promoters with the promoter link"),
    ("thank_you_late", "closing after the survey closed"),
    ("clarify", "clarification"),
    ("help", "help"),
    ("opted_out", "opt-out confirmation"),
    ("opted_in", "opt-in confirmation"),
)
EMAIL_TEXTS = (
    ("email_subject", "email subject"),
    ("email_reminder_subject", "email reminder subject"),
    ("question", "email question"),
    ("page_thanks", "survey page closing"),
)
_REMINDERS = ("sms_reminder", "email_reminder_subject")


@dataclass(frozen=True)
class PreviewText:
    """One text as sent; ``segments`` and ``encoding`` for SMS texts only."""

    key: str
    label: str
    channel: Channel
    text: str
    segments: int | None = None
    encoding: str | None = None

    @property
    def heading(self) -> str:
        head = f"{self.label} ({self.channel})"
        if self.segments is None:
            return head
        plural = "" if self.segments == 1 else "s"
        return f"{head}: {self.segments} segment{plural}, {self.encoding}, {len(self.text)} characters"


def preview_texts(
    definition: CampaignDefinition,
    *,
    name: str | None,
    properties: Mapping[str, object],
    locale: str | None,
    public_base_url: str,
) -> list[PreviewText]:
    """Every text of ``definition`` for a contact with this name, properties and locale, per channel it uses."""
    texts = contact_texts(definition, locale)
    previews: list[PreviewText] = []
    for channel in definition.channels:
        token = PREVIEW_SHORT_TOKEN if channel is Channel.SMS else "x" * 22
        variables = template_variables(name, properties, definition.brand, survey_url(public_base_url, token))
        for key, label in SMS_TEXTS if channel is Channel.SMS else EMAIL_TEXTS:
            if key in _REMINDERS and definition.remind_after is None:
                continue
            if key == "closing_promoter_link" and not definition.promoter_link:
                continue
            text = texts.text(key, **variables, promoter_link=definition.promoter_link or "")
            if channel is not Channel.SMS:
                previews.append(PreviewText(key, label, channel, text))
                continue
            if key == "sms":
                text = with_opt_out(text, texts.text("sms_opt_out", **variables))
            count, encoding = sms_segments(text)
            previews.append(PreviewText(key, label, channel, text, count, encoding))
    return previews
