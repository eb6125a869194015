"""Unsubscribing from the email's link and header: a GET only asks, a POST (or RFC 8058 one-click) acts."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher
from service.container import Container
from storage.enums import Channel, ConsentStatus
from storage.tables import Consent
from tests.fixtures.survey import ANA, CAMPAIGN, csrf_of, survey


def consents(engine: Container) -> list[tuple[Channel, str, ConsentStatus, str]]:
    with engine.db.transaction() as session:
        return [(c.channel, c.address, c.status, c.source) for c in session.scalars(select(Consent))]


def test_the_unsubscribe_page_asks_first_and_a_post_unsubscribes(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher)
    page = app.get(f"/u/{token}")
    assert page.status_code == 200
    assert "a•••@example.com" in page.text and "ana@example.com" not in page.text
    assert consents(engine) == []

    done = app.post(f"/u/{token}", data={"csrf": csrf_of(page.text)})
    assert [r.status_code for r in done.history] == [303] and done.status_code == 200
    assert 'name="csrf"' not in done.text  # the confirmation, not the form again
    assert consents(engine) == [
        (Channel.EMAIL, ANA["email"], ConsentStatus.OPTED_OUT, "email:unsubscribe-page")
    ]


def test_an_unsubscribe_post_without_csrf_is_refused(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher)
    assert app.post(f"/u/{token}", data={"csrf": "nope"}).status_code == 403
    assert app.post(f"/u/{token}", data={"List-Unsubscribe": "one-click!"}).status_code == 403
    assert app.post(f"/u/{token}").status_code == 403
    assert consents(engine) == []


def test_one_click_unsubscribe_needs_no_csrf_token(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    """RFC 8058: Gmail and Yahoo POST `List-Unsubscribe=One-Click` from their servers, with no cookies or Origin."""
    token = survey(engine, dispatcher)
    for content_type, body in (
        ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click"),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b--\r\n',
        ),
    ):
        response = app.post(f"/u/{token}", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 200
    assert consents(engine) == [(Channel.EMAIL, ANA["email"], ConsentStatus.OPTED_OUT, "email:one-click")]


def test_for_an_sms_invitation_the_number_is_unsubscribed(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    phone = "+4915112345678"
    token = survey(engine, dispatcher, {**ANA, "phone": phone}, campaign=CAMPAIGN.replace("[email]", "[sms]"))
    page = app.get(f"/u/{token}")
    assert "+4••••••••••78" in page.text and phone not in page.text
    app.post(f"/u/{token}", data={"csrf": csrf_of(page.text)})
    assert consents(engine) == [(Channel.SMS, phone, ConsentStatus.OPTED_OUT, "sms:unsubscribe-page")]
