"""Rendering an invitation or reminder for one contact on one channel: localised, personalised text.

An email is multipart (plain text + HTML): a greeting, the campaign's own intro when it has one, the question,
eleven score links to the hosted survey page, the scale's end labels and an unsubscribe link, plus the
List-Unsubscribe headers for one-click unsubscribing (RFC 8058). The HTML is built for mail clients, not
browsers: nested tables, inline styles and `bgcolor` (Outlook's Word engine ignores most CSS), no images,
no scripts, no external stylesheet.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from campaigns.channels.base import Outgoing
from campaigns.definitions.model import CampaignDefinition
from campaigns.messages.branding import DEFAULT_ACCENT, NO_BRANDING, Branding
from campaigns.messages.locales import text_direction
from campaigns.messages.optout import with_opt_out
from campaigns.messages.templates import render, template_variables
from campaigns.messages.texts import ContactTexts, contact_texts
from storage.enums import Channel
from storage.tables import Contact

SCORES = range(11)
# One neutral colour for every score: red/amber/green would suggest which answer is wanted. Ink on a light
# grey (15.3:1) and a grey border (5.7:1 against white) keep WCAG AA contrast.
_BUTTON, _BUTTON_INK, _BUTTON_BORDER = "#f1f3f4", "#202124", "#5f6368"
# Two rows (0-5, 6-10) so that each link is at least 44x44 CSS px on a 320 px wide phone.
_ROWS = (range(0, 6), range(6, 11))
_FONT = "Arial,Helvetica,sans-serif"


def survey_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/s/{token}"


def score_url(public_base_url: str, token: str, score: int) -> str:
    return f"{survey_url(public_base_url, token)}?score={score}"


def unsubscribe_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/u/{token}"


def unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 + RFC 8058: mail apps show an Unsubscribe button that POSTs `List-Unsubscribe=One-Click`."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def compose(
    definition: CampaignDefinition,
    contact: Contact,
    *,
    channel: Channel,
    address: str,
    token: str,
    public_base_url: str,
    branding: Branding = NO_BRANDING,
    reminder: bool = False,
    number_told: bool = False,
    short_token: str | None = None,
) -> Outgoing:
    """The message; by SMS, ``{{ survey_url }}`` is the short link when the invitation has ``short_token``."""
    texts = contact_texts(definition, contact.locale)  # the locales are chosen once for the whole message
    survey = texts.survey_texts()
    sms_link = channel is Channel.SMS and short_token is not None
    url = survey_url(public_base_url, short_token if sms_link and short_token else token)
    variables = template_variables(
        contact.name,
        contact.properties,
        definition.brand or branding.company,
        url,
        locale=contact.locale or definition.locale,
    )
    if channel is Channel.SMS:
        source = survey.sms_reminder if reminder else survey.sms
        body = render(source or "", variables)
        if not number_told:
            body = with_opt_out(body, texts.text("sms_opt_out", **variables))
        return Outgoing(channel, address, body)
    subject = render((survey.email_reminder_subject if reminder else survey.email_subject) or "", variables)

    def body_text(key: str) -> str:
        return texts.text(key, **variables)

    email = SurveyEmail(
        lang=texts.language,
        subject=subject,
        greeting=body_text("email_greeting"),
        intro=_campaign_intro(texts, variables),
        question=body_text("question"),
        scale_low=body_text("scale_low"),
        scale_high=body_text("scale_high"),
        links=[(score, score_url(public_base_url, token, score)) for score in SCORES],
        unsubscribe=body_text("unsubscribe"),
        unsubscribe_note=body_text("unsubscribe_note"),
        unsubscribe_url=unsubscribe_url(public_base_url, token),
        company=definition.brand or branding.company or "",
        logo_url=branding.logo_url or "",
        accent=branding.accent,
    )
    return Outgoing(
        channel,
        address,
        email.text(),
        subject=subject,
        html=email.html(),
        headers=unsubscribe_headers(email.unsubscribe_url),
    )


def _campaign_intro(texts: ContactTexts, variables: dict[str, object]) -> str:
    """The campaign's own email intro in the email's language, if it wrote one ("" otherwise).

    The shipped intros greet and ask the question themselves, which the email already does with the
    catalogue's texts; an intro the campaign wrote is what it wants to add ("Thanks for your order ...").
    So the intro is the campaign's only where its text comes before any shipped one in the order of
    :class:`campaigns.messages.texts.ContactTexts`: its default locale's intro serves only contacts whose email
    falls back to that locale. Like the subject, it is rendered strictly: a failure fails the invitation.
    """
    source = texts.override("email_intro")
    return render(source, variables) if source else ""


@dataclass(frozen=True)
class SurveyEmail:
    """The texts and links of one survey email, rendered twice: as plain text and as HTML."""

    lang: str
    subject: str
    greeting: str
    intro: str
    question: str
    scale_low: str
    scale_high: str
    links: list[tuple[int, str]]
    unsubscribe: str
    unsubscribe_note: str
    unsubscribe_url: str
    company: str = ""
    logo_url: str = ""
    accent: str = DEFAULT_ACCENT

    def label(self, score: int) -> str:
        """What a screen reader says for a score link: "0 / 10, Not at all likely"."""
        end = {0: self.scale_low, 10: self.scale_high}.get(score)
        return f"{score} / 10, {end}" if end else f"{score} / 10"

    def text(self) -> str:
        scores = [f"{self.label(score)}: {link}" for score, link in self.links]
        parts = [self.greeting, self.intro, self.question, "\n".join(scores)]
        # "-- " is the signature delimiter: mail clients show what follows as a footer.
        footer = f"-- \n{self.unsubscribe_note}\n{self.unsubscribe}: {self.unsubscribe_url}"
        return "\n\n".join(part for part in [*parts, footer] if part)

    def html(self) -> str:
        paragraph = '<p style="margin:0 0 16px">{}</p>'
        intro = "".join(paragraph.format(escape(line)) for line in self.intro.split("\n\n") if line.strip())
        return (
            f'<!doctype html><html lang="{escape(self.lang)}"{self._dir}><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="x-apple-disable-message-reformatting"><title>{escape(self.subject)}</title></head>'
            f'<body{self._dir} style="margin:0;padding:0;background:#f1f3f4">'
            # The inbox preview line: the question rather than the first words of the greeting.
            f'<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">{escape(self.question)}</div>'
            f'{_table("background:#f1f3f4")}<tr><td align="center" style="padding:24px 0">'
            f"{_table('max-width:600px;background:#ffffff;border-radius:8px')}"
            f"{self._header()}"
            f'<tr><td style="padding:24px 12px;font-family:{_FONT};font-size:16px;line-height:24px;color:#202124">'
            f"{paragraph.format(escape(self.greeting))}{intro}"
            f'<p style="margin:0 0 20px;font-size:18px;line-height:26px;font-weight:bold">{escape(self.question)}</p>'
            f"{self._buttons()}"
            f"{_table('')}<tr>"
            f'<td align="{self._start}" style="padding-top:8px;font-family:{_FONT};font-size:13px;line-height:18px;color:#5f6368">'
            f"0 = {escape(self.scale_low)}</td>"
            f'<td align="{self._end}" style="padding-top:8px;font-family:{_FONT};font-size:13px;line-height:18px;color:#5f6368">'
            f"10 = {escape(self.scale_high)}</td></tr></table>"
            f"</td></tr></table>"
            f'{_table("max-width:600px")}<tr><td style="padding:16px 20px;font-family:{_FONT};font-size:12px;'
            f'line-height:18px;color:#5f6368">{escape(self.unsubscribe_note)} '
            f'<a href="{escape(self.unsubscribe_url)}" style="display:inline-block;min-width:44px;padding:13px 0;color:#5f6368;text-decoration:underline">'
            f"{escape(self.unsubscribe)}</a></td></tr></table>"
            f"</td></tr></table></body></html>"
        )

    def _header(self) -> str:
        """The sender's logo (its alt text the company) or name, over a bar in the accent colour."""
        if not (self.company or self.logo_url):
            return ""
        brand = (
            f'<img src="{escape(self.logo_url)}" alt="{escape(self.company)}" height="40" '
            f'style="display:block;height:40px;width:auto;border:0">'
            if self.logo_url
            else f'<span style="font-size:18px;font-weight:bold;color:#202124">{escape(self.company)}</span>'
        )
        return (
            f'<tr><td style="padding:20px 12px 0;border-top:4px solid {self.accent};border-radius:8px 8px 0 0;'
            f'font-family:{_FONT}">{brand}</td></tr>'
        )

    def _buttons(self) -> str:
        links = dict(self.links)
        rows = [
            "<tr>" + "".join(self._button(score, links[score]) for score in row) + "</tr>"
            for row in _ROWS
            if all(score in links for score in row)
        ]
        return f"{_table('table-layout:fixed')}{''.join(rows)}</table>"

    @property
    def _dir(self) -> str:
        """dir="rtl" for a right-to-left language (on html and body: some mail apps drop one of them)."""
        return ' dir="rtl"' if text_direction(self.lang) == "rtl" else ""

    @property
    def _start(self) -> str:
        return "right" if self._dir else "left"

    @property
    def _end(self) -> str:
        return "left" if self._dir else "right"

    def _button(self, score: int, link: str) -> str:
        """One score: a neutral cell (bgcolor for Outlook) whose whole 48 px height is the link."""
        label = escape(self.label(score))
        return (
            f'<td width="16%" align="center" style="padding:2px 1px">{_table("")}<tr>'
            f'<td align="center" bgcolor="{_BUTTON}" style="background:{_BUTTON};'
            f'border:1px solid {_BUTTON_BORDER};border-radius:6px">'
            f'<a href="{escape(link)}" target="_blank" aria-label="{label}" title="{label}" '
            f'style="display:block;padding:14px 0;font-family:{_FONT};font-size:18px;line-height:20px;'
            f'font-weight:bold;color:{_BUTTON_INK};text-decoration:none">{score}</a>'
            f"</td></tr></table></td>"
        )


def _table(style: str) -> str:
    styled = f' style="{style}"' if style else ""
    return f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"{styled}>'
