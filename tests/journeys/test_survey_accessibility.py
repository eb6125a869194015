"""The email and every state of the survey page, checked by axe-core in Chromium on a 320 px wide phone.

axe-core comes from the npm registry (`.ci/run` installs it into $AXE_CORE_DIR); each state must have no
serious or critical violation, and every button and link one taps must be at least 44x44 CSS px.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.browser import LiveApp
from tests.fixtures.survey import survey
from tests.standins.smtp import SmtpSink

AXE = Path(os.environ.get("AXE_CORE_DIR") or "/tmp/nps-axe-core") / "node_modules/axe-core/axe.min.js"
SMALL_PHONE = {"width": 320, "height": 640}
TAP = 44
_TAPPABLE = "button, a, label.score"


@pytest.fixture
def axe() -> str:
    if not AXE.is_file():
        pytest.skip(
            f"axe-core is not installed: npm install --prefix {AXE.parents[2]} axe-core (as .ci/run does)"
        )
    return AXE.read_text()


def serious_violations(page: Any, axe: str) -> list[str]:
    page.add_script_tag(content=axe)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def small_targets(page: Any) -> list[str]:
    small = []
    for element in page.locator(_TAPPABLE).all():
        box = element.bounding_box()
        if box and (box["width"] < TAP or box["height"] < TAP):
            small.append(f"{element.inner_text()!r}: {box['width']:.0f}x{box['height']:.0f}")
    return small


def check(page: Any, axe: str, state: str) -> None:
    assert serious_violations(page, axe) == [], state
    assert small_targets(page) == [], state


def test_every_page_state_passes_axe_with_large_tap_targets(
    live_app: LiveApp, smtp_sink: SmtpSink, chromium: Any, axe: str
) -> None:
    container = live_app.container
    dispatcher = container.new_dispatcher(worker_id="axe-test")
    try:
        token = survey(container, dispatcher)
    finally:
        dispatcher.close()
    [email] = smtp_sink.wait_for(1)
    # bypass_csp: the page forbids inline scripts (rightly); axe is injected by the test, not the page.
    context = chromium.new_context(viewport=SMALL_PHONE, locale="en-US", bypass_csp=True)
    page = context.new_page()
    page.set_content(email.body("html") or "")
    check(page, axe, "email")

    survey_url = f"{live_app.url}/s/{token}"
    page.goto(survey_url)
    check(page, axe, "before a choice")
    page.goto(f"{survey_url}?score=3")
    check(page, axe, "after a choice")
    page.get_by_role("button").click()
    page.wait_for_url(survey_url)
    check(page, axe, "comment")
    page.get_by_role("button").click()
    page.wait_for_url(f"{survey_url}/thanks")
    check(page, axe, "thanks")
    page.goto(f"{live_app.url}/s/not-a-token")
    check(page, axe, "invalid link")
    context.close()


def test_score_buttons_carry_no_colour_before_a_choice(
    smtp_sink: SmtpSink, live_app: LiveApp, chromium: Any
) -> None:
    container = live_app.container
    dispatcher = container.new_dispatcher(worker_id="colour-test")
    try:
        token = survey(container, dispatcher)
    finally:
        dispatcher.close()
    [email] = smtp_sink.wait_for(1)
    body = email.body("html") or ""
    email_colours = {html.unescape(c) for c in re.findall(r'bgcolor="([^"]+)"', body)}
    assert len(email_colours) == 1, email_colours  # one neutral colour for all eleven
    context = chromium.new_context(viewport=SMALL_PHONE)
    page = context.new_page()
    page.goto(f"{live_app.url}/s/{token}")
    backgrounds = page.eval_on_selector_all(
        "label.score", "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )
    assert len(set(backgrounds)) == 1, backgrounds
    context.close()
