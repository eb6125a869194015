"""End to end in a real browser: email to the SMTP server, score link clicked in headless Chromium, comment stored.

The app runs under uvicorn on 127.0.0.1 with PUBLIC_BASE_URL pointing at it, so the links in the email are
the ones Chromium opens. Chromium is Debian's (`apt-get install chromium`, done by `.ci/run`), driven by the
Playwright package with `executable_path`; `playwright install` is never needed. Each page is saved as a
screenshot for review, in $SCREENSHOT_DIR or the test's temporary directory (the path is printed).
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from storage.enums import ConsentStatus
from storage.tables import Consent
from tests.fixtures.browser import PHONE, LiveApp
from tests.fixtures.survey import ANA, response_count, responses, survey
from tests.standins.smtp import SmtpSink


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nsurvey page screenshots: {directory}")
    return directory


def test_a_score_link_from_a_received_email_is_answered_in_chromium(
    live_app: LiveApp, smtp_sink: SmtpSink, chromium: Any, screenshots: Path
) -> None:
    container = live_app.container
    dispatcher = container.new_dispatcher(worker_id="browser-test")
    try:
        token = survey(container, dispatcher)
    finally:
        dispatcher.close()
    [email] = smtp_sink.wait_for(1)
    body = email.body("html") or ""
    links = {
        int(score): html.unescape(href) for href, score in re.findall(r'href="([^"]+\?score=(\d+))"', body)
    }
    assert links[3] == f"{live_app.url}/s/{token}?score=3"

    context = chromium.new_context(viewport=PHONE, device_scale_factor=2, locale="en-US")
    page = context.new_page()
    page.set_content(body)
    page.screenshot(path=screenshots / "0-email.png", full_page=True)

    page.goto(links[3])
    assert page.is_checked("#score-3")
    assert page.locator("html").get_attribute("lang") == "en"
    page.screenshot(path=screenshots / "1-score-link.png", full_page=True)
    assert response_count(container) == 0  # opening the link stored nothing

    page.get_by_role("button").click()
    page.wait_for_url(f"{live_app.url}/s/{token}")
    assert page.is_checked("#score-3")
    assert [(r.score, r.comment) for r in responses(container)] == [(3, None)]
    page.screenshot(path=screenshots / "2-comment.png", full_page=True)

    page.fill("#comment", "The checkout kept timing out.")
    page.get_by_role("button").click()
    page.wait_for_url(f"{live_app.url}/s/{token}/thanks")
    page.screenshot(path=screenshots / "3-thanks.png", full_page=True)
    [response] = responses(container)
    assert (response.score, response.category, response.comment) == (
        3,
        "detractor",
        "The checkout kept timing out.",
    )

    page.goto(f"{live_app.url}/u/{token}")
    page.screenshot(path=screenshots / "4-unsubscribe.png", full_page=True)
    context.close()

    # The List-Unsubscribe header, used the way a mail provider does: an RFC 8058 POST from its server.
    url = str(email.message["List-Unsubscribe"]).strip("<>")
    assert httpx.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=5).status_code == 200
    with container.db.transaction() as session:
        consent = session.scalars(select(Consent)).one()
    assert (consent.address, consent.status) == (ANA["email"], ConsentStatus.OPTED_OUT)
    for name in ("0-email", "1-score-link", "2-comment", "3-thanks", "4-unsubscribe"):
        assert (screenshots / f"{name}.png").stat().st_size > 1000


ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # gitignored


def test_the_arabic_page_is_right_to_left_in_chromium(live_app: LiveApp, chromium: Any) -> None:
    container = live_app.container
    dispatcher = container.new_dispatcher(worker_id="browser-test")
    try:
        token = survey(container, dispatcher, {**ANA, "locale": "ar"})
    finally:
        dispatcher.close()
    directory = Path(os.environ.get("SCREENSHOT_DIR") or ARTIFACTS)
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nArabic survey page screenshots: {directory}")
    context = chromium.new_context(viewport=PHONE, device_scale_factor=2, locale="ar")
    page = context.new_page()
    page.goto(f"{live_app.url}/s/{token}?score=9")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    # Right to left: 0 is the rightmost score of the first row.
    zero, five = (page.locator(f"label[for=score-{n}]").bounding_box() for n in (0, 5))
    assert zero is not None and five is not None and zero["x"] > five["x"]
    page.screenshot(path=directory / "ar-1-score-link.png", full_page=True)
    page.get_by_role("button").click()
    page.wait_for_url(f"{live_app.url}/s/{token}")
    page.screenshot(path=directory / "ar-2-comment.png", full_page=True)
    context.close()
    assert [r.score for r in responses(container)] == [9]
    assert (directory / "ar-1-score-link.png").stat().st_size > 1000
