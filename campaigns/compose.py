"""Rendering an invitation or reminder for one contact on one channel: localised, personalised text."""

from __future__ import annotations

from html import escape

from campaigns.channels.base import Outgoing
from campaigns.definitions import CampaignDefinition
from campaigns.templates import render, template_variables, texts_for
from storage.enums import Channel
from storage.tables import Contact


def survey_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/s/{token}"


def score_url(public_base_url: str, token: str, score: int) -> str:
    return f"{survey_url(public_base_url, token)}?score={score}"


def compose(
    definition: CampaignDefinition,
    contact: Contact,
    *,
    channel: Channel,
    address: str,
    token: str,
    public_base_url: str,
    reminder: bool = False,
) -> Outgoing:
    _, texts = texts_for(definition.messages, contact.locale, definition.locale)
    url = survey_url(public_base_url, token)
    variables = template_variables(contact.name, contact.properties, definition.brand, url)
    if channel is Channel.SMS:
        source = texts.sms_reminder if reminder else texts.sms
        return Outgoing(channel, address, render(source or "", variables))
    subject = render((texts.email_reminder_subject if reminder else texts.email_subject) or "", variables)
    intro = render(texts.email_intro or "", variables)
    links = [(score, score_url(public_base_url, token, score)) for score in range(11)]
    text = "\n".join([intro, "", *(f"{score}: {link}" for score, link in links)])
    return Outgoing(channel, address, text, subject=subject, html=_html(intro, links))


def _html(intro: str, links: list[tuple[int, str]]) -> str:
    cells = "".join(
        f'<td style="padding:2px"><a href="{escape(link)}" style="display:inline-block;min-width:28px;'
        f"padding:8px 4px;border:1px solid #ccc;border-radius:4px;text-align:center;text-decoration:none;"
        f'color:#222">{score}</a></td>'
        for score, link in links
    )
    return (
        f'<!doctype html><html><body style="font-family:sans-serif">'
        f"<p>{escape(intro)}</p>"
        f'<table role="presentation"><tr>{cells}</tr></table>'
        f'<p style="color:#666;font-size:12px">0 = not at all likely, 10 = extremely likely</p>'
        f"</body></html>"
    )
