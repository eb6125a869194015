"""The hosted survey page over HTTP: scanner-safe links, CSRF, score changes, late answers, odd input."""

from __future__ import annotations

import html
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.dispatch.expiry import expire_invitations
from campaigns.followups.actions import resolve
from campaigns.messages.segments import sms_segments
from campaigns.messages.texts import text
from service.container import Container
from service.web.limits import SURVEY_BODY
from storage.enums import Channel, InvitationState
from storage.tables import FollowUp, Invitation
from tests.fixtures.engine import PUBLIC_URL
from tests.fixtures.survey import ANA, CAMPAIGN, csrf_of, response_count, responses, survey
from tests.standins.fake_twilio import FakeTwilio

VARS = {"first_name": "Ana", "company": "Acme"}


def t(key: str, locale: str = "en", **extra: object) -> str:
    """A catalogue text as it appears in the HTML."""
    return html.escape(text(locale, key, **{**VARS, **extra}), quote=False)


def confirm(app: TestClient, token: str, score: int | str | None, comment: str = "", step: str = "score"):  # type: ignore[no-untyped-def]
    csrf = csrf_of(app.get(f"/s/{token}").text)
    form = {"csrf": csrf, "step": step, "comment": comment}
    if score is not None:
        form["score"] = str(score)
    return app.post(f"/s/{token}", data=form)


def invitation_state(engine: Container) -> InvitationState:
    with engine.db.transaction() as session:
        return session.scalars(select(Invitation.state)).one()


def test_a_score_link_preselects_the_score_and_stores_nothing(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher)
    page = app.get(f"/s/{token}?score=7")
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert 'id="score-7" checked' in page.text
    assert page.text.count(" checked") == 1
    assert t("page_question") in page.text
    assert t("page_score_confirm", score=7) in page.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert response_count(engine) == 0
    assert invitation_state(engine) is InvitationState.SENT


def test_all_eleven_links_fetched_within_a_second_store_nothing(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    """What Safe Links, Proofpoint and Mimecast do to every email: open each link at once, in parallel."""
    token = survey(engine, dispatcher)
    urls = [f"{PUBLIC_URL}/s/{token}?score={score}" for score in range(11)] + [f"{PUBLIC_URL}/u/{token}"]
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda url: app.get(url).status_code, urls))
    assert statuses == [200] * 12
    assert response_count(engine) == 0
    assert invitation_state(engine) is InvitationState.SENT
    assert app.get(f"/u/{token}").text.count('name="csrf"') == 1  # still asking: nobody was unsubscribed


def test_confirming_stores_the_score_then_the_comment(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher)
    comment_step = confirm(app, token, 3)
    assert comment_step.status_code == 200
    assert [r.status_code for r in comment_step.history] == [303]
    assert comment_step.url.path == f"/s/{token}"
    assert t("follow_up_detractor") in comment_step.text and 'id="score-3" checked' in comment_step.text
    [response] = responses(engine)
    assert (response.score, response.category, response.comment) == (3, "detractor", None)
    assert response.channel is Channel.EMAIL and response.late is False
    assert response.contact_snapshot == {"plan": "pro"}
    assert invitation_state(engine) is InvitationState.RESPONDED

    thanks = app.post(
        f"/s/{token}",
        data={
            "csrf": csrf_of(comment_step.text),
            "step": "comment",
            "score": "3",
            "comment": "  slow support ",
        },
    )
    assert thanks.status_code == 200 and thanks.url.path == f"/s/{token}/thanks"
    assert t("closing_detractor_contact") in thanks.text
    [response] = responses(engine)
    assert (response.score, response.comment) == (3, "slow support")

    again = app.get(f"/s/{token}?score=10")
    assert t("page_already_answered") in again.text
    assert [r.score for r in responses(engine)] == [3]


def test_score_and_comment_in_one_go(engine: Container, dispatcher: Dispatcher, app: TestClient) -> None:
    token = survey(engine, dispatcher)
    page = confirm(app, token, 10, comment="Great onboarding")
    assert page.url.path == f"/s/{token}/thanks"
    [response] = responses(engine)
    assert (response.score, response.category, response.comment) == (10, "promoter", "Great onboarding")


def test_an_empty_comment_step_is_a_skip(engine: Container, dispatcher: Dispatcher, app: TestClient) -> None:
    token = survey(engine, dispatcher)
    confirm(app, token, 8)
    page = confirm(app, token, 8, step="comment")
    assert page.url.path == f"/s/{token}/thanks"
    assert [(r.score, r.comment) for r in responses(engine)] == [(8, None)]
    assert t("page_skip") in app.get(f"/s/{token}").text  # the comment step still offers it


@pytest.mark.parametrize(
    "csrf",
    [None, "", "0" * 64, "not-hex", "survey-token-of-someone-else"],
    ids=["missing", "empty", "zeros", "junk", "other"],
)
def test_a_post_without_a_valid_csrf_token_is_refused_and_stores_nothing(
    engine: Container, dispatcher: Dispatcher, app: TestClient, csrf: str | None
) -> None:
    token = survey(engine, dispatcher)
    form = {"score": "9", "comment": "forged", "step": "score"}
    if csrf == "survey-token-of-someone-else":
        other = survey(engine, dispatcher, {**ANA, "external_id": "ben", "email": "ben@example.com"})
        csrf = csrf_of(app.get(f"/s/{other}").text)
    if csrf is not None:
        form["csrf"] = csrf
    refused = app.post(f"/s/{token}", data=form)
    assert refused.status_code == 403
    assert 'name="csrf"' in refused.text  # the form again, with a token that works
    assert response_count(engine) == 0


def test_a_post_from_another_site_is_refused(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher)
    csrf = csrf_of(app.get(f"/s/{token}").text)
    form = {"csrf": csrf, "score": "0", "step": "score"}
    assert app.post(f"/s/{token}", data=form, headers={"Origin": "https://evil.example"}).status_code == 403
    assert (
        app.post(f"/s/{token}", data=form, headers={"Referer": "https://evil.example/x"}).status_code == 403
    )
    assert response_count(engine) == 0
    assert app.post(f"/s/{token}", data=form, headers={"Origin": PUBLIC_URL}).status_code == 200


def test_the_score_can_change_until_there_is_a_comment(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher)
    confirm(app, token, 3)
    relinked = app.get(f"/s/{token}?score=9")  # another link from the email: confirm the change first
    assert 'id="score-9" checked' in relinked.text and 'value="score"' in relinked.text
    assert [r.score for r in responses(engine)] == [3]
    confirm(app, token, 8)
    assert [(r.score, r.category) for r in responses(engine)] == [(8, "passive")]
    second_tab = csrf_of(app.get(f"/s/{token}").text)
    confirm(app, token, 9, comment="fast", step="comment")
    late_tab = app.post(f"/s/{token}", data={"csrf": second_tab, "score": "1", "comment": "changed my mind"})
    assert late_tab.url.path == f"/s/{token}/thanks"  # the answer is final once commented
    assert [(r.score, r.comment) for r in responses(engine)] == [(9, "fast")]


def test_a_score_is_needed_before_anything_is_stored(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher)
    page = confirm(app, token, None, comment="no score given")
    assert page.status_code == 400
    assert "no score given" in page.text  # what they wrote is kept in the form
    assert response_count(engine) == 0
    assert app.get(f"/s/{token}/thanks").url.path == f"/s/{token}"  # no thank-you without an answer


def test_after_expiry_the_page_says_so_and_keeps_a_late_answer(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher)
    engine.clock.advance(days=15)  # type: ignore[attr-defined]
    assert expire_invitations(dispatcher) == 1
    page = app.get(f"/s/{token}?score=6")
    assert page.status_code == 200 and t("page_expired") in page.text
    assert t("thank_you_late") in confirm(app, token, 6, comment="too late?").text
    [response] = responses(engine)
    assert (response.score, response.comment, response.late) == (6, "too late?", True)


def test_an_unknown_token_gets_a_clear_404(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    survey(engine, dispatcher)
    for response in (
        app.get("/s/no-such-token?score=5"),
        app.post("/s/no-such-token", data={"score": "5"}),
        app.get("/s/no-such-token/thanks"),
        app.get("/u/no-such-token"),
        app.post("/u/no-such-token", data={"List-Unsubscribe": "One-Click"}),
    ):
        assert response.status_code == 404
        assert t("page_unknown") in response.text
    assert response_count(engine) == 0


def test_the_page_speaks_the_contacts_language(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher, {**ANA, "locale": "fi"})
    page = app.get(f"/s/{token}?score=9").text
    assert '<html lang="fi">' in page
    assert t("page_question", "fi") in page and t("page_confirm_button", "fi") in page


def test_an_arabic_page_is_written_right_to_left(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher, {**ANA, "locale": "ar-EG"})
    page = app.get(f"/s/{token}?score=9").text
    assert '<html lang="ar" dir="rtl">' in page
    assert t("page_question", "ar") in page and t("page_confirm_button", "ar") in page


# A campaign with its own wording: the reason question by SMS in English, the page's thanks in German.
OVERRIDES = """\
    messages:
      en:
        ask_comment: "Thanks {{ first_name }}! What made you give that score?"
        page_question: "Would you recommend {{ company }} to a fellow pilot?"
      de: {page_thanks: "Vielen Dank, {{ first_name }}! Ihre Meinung hilft {{ company }}."}
"""


def test_the_page_uses_the_campaigns_own_texts(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher, {**ANA, "locale": "de"}, campaign=CAMPAIGN + OVERRIDES)
    page = app.get(f"/s/{token}?score=9").text
    assert '<html lang="de">' in page
    assert t("page_question", "de") in page  # the English question is not put on a German page
    thanks = confirm(app, token, 9, comment="Schnell")
    assert thanks.url.path == f"/s/{token}/thanks"
    assert "Vielen Dank, Ana! Ihre Meinung hilft Acme." in thanks.text
    assert t("page_thanks", "de") not in thanks.text
    assert t("page_already_answered", "de") in app.get(f"/s/{token}").text  # not overridden: the catalogue's


def test_the_campaigns_texts_in_another_language_stay_there(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher, campaign=CAMPAIGN + OVERRIDES)
    page = app.get(f"/s/{token}?score=9").text
    assert '<html lang="en">' in page
    assert "Would you recommend Acme to a fellow pilot?" in page
    assert t("page_question") not in page
    assert (
        t("closing_promoter") in confirm(app, token, 9, comment="Fast").text
    )  # the German thanks is German only


def test_a_contact_in_a_language_nobody_ships_gets_the_campaigns_language(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    german = CAMPAIGN.replace("brand: Acme", "brand: Acme\n    locale: de") + OVERRIDES
    token = survey(engine, dispatcher, {**ANA, "locale": "sv"}, campaign=german)
    page = app.get(f"/s/{token}?score=9").text
    assert '<html lang="de">' in page and t("page_question", "de") in page
    assert "Vielen Dank, Ana!" in confirm(app, token, 9, comment="Bra").text


def test_contact_data_is_escaped_on_the_page(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher, {**ANA, "properties": {"company": '<script>alert("x")</script>'}})
    page = app.get(f"/s/{token}?score=1").text
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_pages_are_not_cached_framed_or_indexed(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher)
    page = app.get(f"/s/{token}?score=9")
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "same-origin"
    css = app.get("/s/assets/survey.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


ODD_REQUESTS = [
    ("GET", "/s/{token}?score=11", None),
    ("GET", "/s/{token}?score=-1", None),
    ("GET", "/s/{token}?score=abc", None),
    ("GET", "/s/{token}?score=%EF%BC%99", None),  # full-width nine
    ("GET", "/s/{token}?score=" + "9" * 5000, None),
    ("GET", "/s/{token}?score=5&score=6", None),
    ("GET", "/s/%00%ff%fe?score=3", None),
    ("GET", "/s/" + "a" * 5000, None),
    ("POST", "/s/{token}", b"\xff\xfe\x00garbage"),
    ("POST", "/s/{token}", b"score=%ff&csrf=%00&comment=" + b"x" * 200_000),
    ("POST", "/s/{token}", b"--boundary\r\nContent-Disposition: form-data; name=score\r\n\r\n5"),
    ("POST", "/u/{token}", b"\xff\xfe\x00garbage"),
]


@pytest.mark.parametrize(("method", "path", "body"), ODD_REQUESTS)
def test_odd_input_never_causes_a_500_or_a_response(
    engine: Container, dispatcher: Dispatcher, app: TestClient, method: str, path: str, body: bytes | None
) -> None:
    token = survey(engine, dispatcher)
    headers = {"Content-Type": "multipart/form-data; boundary=x"} if body and body.startswith(b"--") else {}
    if body and not headers:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = app.request(method, path.format(token=token), content=body, headers=headers)
    assert response.status_code < 500
    if (
        body is not None and len(body) > SURVEY_BODY
    ):  # no browser sends it: the form's comment has a maxlength
        assert response.status_code == 413
    else:
        assert response.headers["content-type"].startswith("text/html")
    assert response_count(engine) == 0
    if method == "GET" and "{token}" in path:
        assert response.status_code == 200 and " checked" not in response.text  # no pre-selection


# --- per category: the follow-up question, the closing and the promoter link -------------------------------

LINK = "https://g.page/r/acme-review"


def link_button(page: str) -> bool:
    return f'<a class="primary" href="{LINK}" rel="noopener">{t("page_promoter_link")}</a>' in page


@pytest.mark.parametrize(
    ("score", "question", "closing"),
    [
        (0, "follow_up_detractor", "closing_detractor_contact"),
        (8, "follow_up_passive", "closing_passive"),
        (9, "follow_up_promoter", "closing_promoter"),
    ],
)
def test_the_page_asks_and_closes_by_category_and_shows_the_link_to_promoters_only(
    engine: Container, dispatcher: Dispatcher, app: TestClient, score: int, question: str, closing: str
) -> None:
    token = survey(engine, dispatcher, campaign=CAMPAIGN + f"    promoter_link: {LINK}\n")
    comment_step = confirm(app, token, score)
    assert t(question) in comment_step.text
    for other in {"follow_up_detractor", "follow_up_passive", "follow_up_promoter"} - {question}:
        assert t(other) not in comment_step.text
    thanks = app.get(f"/s/{token}/thanks").text  # "Skip": the closing without a comment
    assert t(closing) in thanks
    assert link_button(thanks) is (score == 9)
    assert ("get in touch" in thanks) is (score == 0)


def test_no_link_without_a_promoter_link_and_the_campaigns_own_category_texts_win(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    own = (
        "    messages:\n"
        "      en: {follow_up_promoter: 'What do you love, {{ first_name }}?', closing_promoter: 'You rock!'}\n"
    )
    token = survey(engine, dispatcher, campaign=CAMPAIGN + own)
    assert "What do you love, Ana?" in confirm(app, token, 10).text
    thanks = confirm(app, token, 10, comment="All good", step="comment")
    assert "You rock!" in thanks.text and '<a class="primary"' not in thanks.text


def test_a_detractor_whose_follow_up_was_resolved_is_not_promised_contact(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher)
    confirm(app, token, 4)
    with engine.db.transaction() as session:
        [follow_up] = session.scalars(select(FollowUp)).all()
    assert resolve(engine.db, follow_up.id, user="U1", note="emailed", method=None, now=engine.clock.now())
    thanks = app.get(f"/s/{token}/thanks").text
    assert t("closing_detractor") in thanks and "get in touch" not in thanks


def test_the_emails_score_link_leads_to_the_category_question_in_the_contacts_language(
    engine: Container, dispatcher: Dispatcher, app: TestClient
) -> None:
    token = survey(engine, dispatcher, {**ANA, "locale": "vi"})
    assert t("follow_up_detractor", "vi") in confirm(app, token, 5).text
    assert t("closing_detractor_contact", "vi") in app.get(f"/s/{token}/thanks").text


def test_the_page_carries_the_configured_logo_and_accent_colour(
    engine_settings: Any, db: Any, clock: Any, smtp_sink: Any
) -> None:
    from dataclasses import replace

    from campaigns.messages.branding import Branding
    from service.container import build_container
    from service.web.app import create_app

    branding = Branding(company="Globex", logo_url="https://globex.example/logo.png", accent="#0b57d0")
    container = build_container(replace(engine_settings, branding=branding), db=db, clock=clock)
    dispatcher = container.new_dispatcher(worker_id="brand-test")
    try:
        token = survey(container, dispatcher)
    finally:
        dispatcher.close()
    with TestClient(create_app(container)) as client:
        page = client.get(f"/s/{token}")
        assert '<img class="logo" src="https://globex.example/logo.png" alt="Globex"' in page.text
        css = client.get("/s/assets/survey.css")
        assert "--accent: #0b57d0;" in css.text


SMS_WITH_LINK = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    brand: Acme
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
    messages:
      en: {sms: "Acme: rate us 0-10 by reply or tap {{ survey_url }} Reply STOP to opt out."}
"""


def test_an_sms_carries_a_short_link_to_the_survey_page(
    engine: Container, dispatcher: Dispatcher, app: TestClient, fake_twilio: FakeTwilio
) -> None:
    survey(engine, dispatcher, {**ANA, "email": None, "phone": "+4915112345678"}, SMS_WITH_LINK)
    [sms] = fake_twilio.wait_for(1)
    match = re.search(rf"{re.escape(PUBLIC_URL)}/s/([A-Za-z0-9_-]+) ", sms["Body"])
    assert match, sms["Body"]
    short = match.group(1)
    with engine.db.transaction() as session:
        invitation = session.scalars(select(Invitation)).one()
        assert (invitation.short_token, len(short)) == (short, 10)  # stored, and far shorter than the token
        assert invitation.token != short
    assert sms_segments(sms["Body"]) == (1, "GSM-7")
    page = app.get(f"/s/{short}?score=9")
    assert page.status_code == 200 and t("page_score_confirm", score=9) in page.text
    assert confirm(app, short, 9).url.path == f"/s/{short}"  # on to the comment step, on the short link
    assert [r.score for r in responses(engine)] == [9]
