"""The survey email as the SMTP server receives it: texts, eleven score links, unsubscribe link and headers."""

from __future__ import annotations

import html
import io
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.contacts.importer import import_contacts
from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.messages.compose import compose
from campaigns.messages.texts import text
from service.container import Container
from storage.db import Database
from storage.enums import Channel, ConsentStatus, MessagePurpose
from storage.tables import Consent, Contact
from tests.fixtures.engine import PUBLIC_URL
from tests.fixtures.survey import ANA, CAMPAIGN, response_count, survey
from tests.standins.smtp import ReceivedEmail, SmtpSink

VARS = {"first_name": "Ana", "company": "Acme"}
_LINK = re.compile(r'<a href="([^"]+)"[^>]*aria-label="([^"]+)" title="([^"]+)" style="([^"]+)">(\d+)</a>')


def received(smtp_sink: SmtpSink) -> ReceivedEmail:
    [email] = smtp_sink.wait_for(1)
    return email


def test_the_invitation_email_has_the_texts_eleven_links_and_unsubscribe_headers(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink
) -> None:
    token = survey(engine, dispatcher)
    email = received(smtp_sink)
    assert email.rcpt_tos == (ANA["email"],)
    assert email.subject == "Would you recommend Acme?"
    assert email.message.get_content_type() == "multipart/alternative"
    unsubscribe = f"{PUBLIC_URL}/u/{token}"
    assert email.message["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert email.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    plain = (email.body("plain") or "").replace("\r\n", "\n")
    assert plain.startswith(text("en", "email_greeting", **VARS))
    assert "Ana" in plain and text("en", "question", **VARS) in plain
    for score in range(11):
        assert f": {PUBLIC_URL}/s/{token}?score={score}\n" in plain + "\n"
    assert unsubscribe in plain

    body = email.body("html") or ""
    assert '<html lang="en">' in body
    assert html.escape(text("en", "email_greeting", **VARS)) in body
    assert html.escape(text("en", "question", **VARS)) in body
    assert html.escape(text("en", "scale_low")) in body and html.escape(text("en", "scale_high")) in body
    links = _LINK.findall(body)
    assert [int(label) for *_, label in links] == list(range(11))
    for score, (href, aria, title, style, _) in enumerate(links):
        assert html.unescape(href) == f"{PUBLIC_URL}/s/{token}?score={score}"
        assert aria == title and aria.startswith(f"{score} / 10")
        assert "display:block" in style and "padding:14px 0" in style  # a 48 px tap target
    colours = re.findall(r'bgcolor="(#[0-9a-f]{6})"', body)
    assert len(colours) == 11 and len(set(colours)) == 1  # neutral: no colour suggests an answer
    assert f'href="{unsubscribe}"' in body and "<script" not in body


def test_a_reminder_is_the_same_email_with_the_reminder_subject(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink
) -> None:
    token = survey(engine, dispatcher)
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    assert dispatcher.drain(MessagePurpose.REMINDER).sent == 1
    _, reminder = smtp_sink.wait_for(2)
    assert reminder.subject == "Reminder: would you recommend Acme?"
    assert reminder.message["List-Unsubscribe"] == f"<{PUBLIC_URL}/u/{token}>"
    assert reminder.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert len(_LINK.findall(reminder.body("html") or "")) == 11


def test_the_email_speaks_the_contacts_language_and_escapes_names(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink
) -> None:
    survey(engine, dispatcher, {**ANA, "name": "<b>Zoé</b> & co", "locale": "zh-TW"})
    email = received(smtp_sink)
    body = email.body("html") or ""
    variables = {"first_name": "<b>Zoé</b> & co", "company": "Acme"}  # Chinese greetings use the full name
    assert '<html lang="zh-Hant">' in body
    assert html.escape(text("zh-TW", "question", **variables)) in body
    assert html.escape(text("zh-TW", "email_greeting", **variables)) in body
    assert "<b>Zoé</b>" not in body and "&lt;b&gt;Zoé&lt;/b&gt;" in body


def test_a_campaign_intro_is_added_above_the_question(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink
) -> None:
    intro = '    messages:\n      en: {email_intro: "Thanks for flying with {{ company }}."}\n'
    survey(engine, dispatcher, campaign=CAMPAIGN + intro)
    email = received(smtp_sink)
    assert "Thanks for flying with Acme." in (email.body("plain") or "")
    assert "Thanks for flying with Acme." in (email.body("html") or "")


def test_a_campaign_intro_is_not_mixed_into_another_language() -> None:
    intro = '    messages:\n      en: {email_intro: "Thanks for flying with {{ company }}."}\n'
    [definition] = parse_campaign_file(CAMPAIGN + intro).campaigns
    for locale, expected in (("de", False), ("en-GB", True), ("sv", True)):  # Swedish gets the English email
        contact = Contact(name="Ana", properties={}, locale=locale)
        email = compose(
            definition, contact, channel=Channel.EMAIL, address="a@b.c", token="t", public_base_url=PUBLIC_URL
        )
        assert ("Thanks for flying" in email.body) is expected, locale


def test_the_campaigns_own_email_texts_are_used() -> None:
    texts = (
        "    messages:\n"
        '      en: {question: "Would you fly with {{ company }} again?", unsubscribe: "Stop these emails"}\n'
        '      de: {scale_high: "Auf jeden Fall"}\n'
    )
    [definition] = parse_campaign_file(CAMPAIGN + texts).campaigns
    contact = Contact(name="Ana Lima", properties={}, locale=None)
    email = compose(
        definition, contact, channel=Channel.EMAIL, address="a@b.c", token="t", public_base_url=PUBLIC_URL
    )
    assert "Would you fly with Acme again?" in email.body and "Stop these emails: " in email.body
    assert "Would you fly with Acme again?" in (email.html or "")
    assert text("en", "scale_high") in email.body
    contact.locale = "de"
    german = compose(
        definition, contact, channel=Channel.EMAIL, address="a@b.c", token="t", public_base_url=PUBLIC_URL
    )
    assert "10 / 10, Auf jeden Fall" in german.body
    assert text("de", "question", **VARS) in german.body and "Would you fly" not in german.body


def test_the_unsubscribe_header_works_with_one_click(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink, app: TestClient
) -> None:
    """What Gmail does with the headers: POST `List-Unsubscribe=One-Click` to the URL in List-Unsubscribe."""
    survey(engine, dispatcher)
    email = received(smtp_sink)
    url = str(email.message["List-Unsubscribe"]).strip("<>")
    response = app.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    with engine.db.transaction() as session:
        consent = session.scalars(select(Consent)).one()
    assert (consent.channel, consent.address, consent.status) == (
        Channel.EMAIL,
        ANA["email"],
        ConsentStatus.OPTED_OUT,
    )
    assert response_count(engine) == 0


# --- first_name in the rendered message ---------------------------------------------------------------------


def test_the_greeting_uses_the_first_name_right_for_the_contacts_locale() -> None:
    [definition] = parse_campaign_file(CAMPAIGN.replace("[email]", "[sms, email]")).campaigns

    def greetings(name: str, locale: str, properties: dict[str, object] | None = None) -> tuple[str, str]:
        contact = Contact(name=name, properties=properties or {}, locale=locale)
        sms, email = (
            compose(definition, contact, channel=channel, address="x", token="t", public_base_url=PUBLIC_URL)
            for channel in (Channel.SMS, Channel.EMAIL)
        )
        return sms.body, email.body

    sms, email = greetings("Nguyễn Văn An", "vi")
    # the Vietnamese SMS is written without tone marks, to stay in GSM-7 and one segment; the email keeps them
    assert sms.startswith("Chao An,") and email.startswith("Chào An,")
    sms, email = greetings("王小明", "zh-Hans")
    assert sms.startswith("王小明，您好") and email.startswith("王小明，")
    sms, email = greetings("김 민준", "ko")  # Korean texts are not shipped: English, with the full name
    assert sms.startswith("Hi 김 민준,") and email.startswith("Hi 김 민준,")
    assert greetings("Ana Lima", "en")[0].startswith("Hi Ana,")
    assert greetings("Nguyễn Văn An", "vi", {"First Name": "Anh An"})[1].startswith("Chào Anh An,")


def test_an_imported_first_name_column_is_the_greetings_name(db: Database) -> None:
    csv = "external_id,name,first_name,locale,email\nan,Nguyễn Văn An,Bé An,vi,an@example.com\nmai,Trần Thị Mai,,vi,mai@example.com\n"
    import_contacts(io.BytesIO(csv.encode()), db=db)
    [definition] = parse_campaign_file(CAMPAIGN).campaigns
    with db.transaction() as session:
        contacts = {c.external_id: c for c in session.scalars(select(Contact))}
        emails = {
            key: compose(
                definition, contact, channel=Channel.EMAIL, address="x", token="t", public_base_url=PUBLIC_URL
            )
            for key, contact in contacts.items()
        }
    assert emails["an"].body.startswith("Chào Bé An,")
    assert emails["mai"].body.startswith(
        "Chào Mai,"
    )  # no first_name of her own: the given name, last in Vietnamese


def test_the_configured_branding_is_on_the_email() -> None:
    from campaigns.messages.branding import Branding

    [definition] = parse_campaign_file(CAMPAIGN.replace("    brand: Acme\n", "")).campaigns
    branding = Branding(company="Globex", logo_url="https://globex.example/logo.png", accent="#0b57d0")
    contact = Contact(name="Ana Lima", properties={}, locale="en")
    email = compose(
        definition,
        contact,
        channel=Channel.EMAIL,
        address="a@b.c",
        token="t",
        public_base_url=PUBLIC_URL,
        branding=branding,
    )
    assert "Globex" in (email.subject or "")
    assert '<img src="https://globex.example/logo.png" alt="Globex"' in (email.html or "")
    assert "border-top:4px solid #0b57d0" in (email.html or "")


def test_an_arabic_email_is_written_right_to_left(
    engine: Container, dispatcher: Dispatcher, smtp_sink: SmtpSink
) -> None:
    survey(engine, dispatcher, {**ANA, "locale": "ar"})
    body = received(smtp_sink).body("html") or ""
    assert '<html lang="ar" dir="rtl">' in body and '<body dir="rtl"' in body
    assert html.escape(text("ar", "question", **VARS)) in body
