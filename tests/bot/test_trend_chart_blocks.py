"""The trend chart in Slack: App Home, the weekly digest and `/nps trend` carry an image block whose signed URL
this service answers; without an https PUBLIC_BASE_URL, App Home and the digest say why there is no chart and
`/nps trend` sends the PNG as a file."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from slack_sdk.errors import SlackApiError

from service.container import Container, build_container
from service.scheduler import Ticker
from service.web.app import create_app
from tests.fixtures.engine import PUBLIC_URL
from tests.fixtures.seeding import Seeder
from tests.fixtures.slack import MANAGER, post_to_slack_events
from tests.standins.block_kit import block_problems
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import event_body, slash_command_body

HOME_OPENED = {"type": "app_home_opened", "user": MANAGER, "channel": "D0HOME", "tab": "home"}


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


@pytest.fixture
def weeks(engine: Container) -> Seeder:
    """Three weeks of answers: +20 three weeks ago, +40 two weeks ago, +60 last week."""
    seed = Seeder(engine.db)
    now = engine.clock.now()
    seed.mix(4, 4, 2, at=now - timedelta(days=19))
    seed.mix(5, 4, 1, at=now - timedelta(days=12))
    seed.mix(6, 4, 0, at=now - timedelta(days=5))
    return seed


def images(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [block for block in blocks if block["type"] == "image"]


def fetch_png(app: TestClient, url: str) -> Image.Image:
    """What Slack's image proxy gets for the block's URL: a 200 with a PNG from this app."""
    assert url.startswith(PUBLIC_URL + "/charts/trend.png?")
    parts = urlsplit(url)
    response = app.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.size == (1200, 675)
    return image


def http_app(engine: Container) -> TestClient:
    """The app of a deployment whose PUBLIC_BASE_URL is plain http (a laptop)."""
    settings = dataclasses.replace(engine.settings, public_base_url="http://localhost:8000")
    return TestClient(create_app(build_container(settings, db=engine.db, clock=engine.clock)))


def test_app_home_shows_the_trend_chart_at_a_signed_url_that_the_app_serves(
    app: TestClient, fake_slack: FakeSlack, weeks: Seeder
) -> None:
    assert post_to_slack_events(app, event_body(HOME_OPENED)).status_code == 200
    [published] = fake_slack.wait_for("views.publish", 1, successful=True)
    [image] = images(published["view"]["blocks"])
    assert not block_problems([image])
    assert image["alt_text"].startswith("NPS by week, oldest first: ")
    assert image["alt_text"].endswith("+20, +40, +60, no responses")  # ... this week has none yet
    assert "NPS weekly trend" in image["title"]["text"]
    fetch_png(app, image["image_url"])
    query = parse_qs(urlsplit(image["image_url"]).query)
    assert set(query) == {"g", "from", "to", "expires", "sig"}  # nothing about anyone


def test_app_home_says_why_there_is_no_chart_on_an_http_base_url(
    engine: Container, fake_slack: FakeSlack, weeks: Seeder
) -> None:
    with http_app(engine) as client:
        assert post_to_slack_events(client, event_body(HOME_OPENED)).status_code == 200
        [published] = fake_slack.wait_for("views.publish", 1, successful=True)
    assert not images(published["view"]["blocks"])
    text = json.dumps(published["view"])
    assert "No trend chart" in text and "https" in text and "http://localhost:8000" in text


@pytest.fixture
def digest_ticker(engine: Container) -> Iterator[Ticker]:
    settings = dataclasses.replace(engine.settings, slack_digest_channel="C0DIGEST")
    ticker = Ticker(build_container(settings, db=engine.db, clock=engine.clock), holder="digest-test")
    yield ticker
    ticker.dispatcher.close()


def test_the_digest_carries_the_last_12_weeks_as_an_image(
    app: TestClient, fake_slack: FakeSlack, weeks: Seeder, digest_ticker: Ticker
) -> None:
    digest_ticker.post_digest()
    [digest] = fake_slack.successful("chat.postMessage")
    [image] = images(digest["blocks"])
    values = image["alt_text"].split("oldest first: ")[1].split(", ")
    assert len(values) == 12 and values[-3:] == ["+20", "+40", "+60"]  # whole weeks, up to the last one
    fetch_png(app, image["image_url"])  # the scheduler's link opens on the web app: one key from the settings


def test_the_digest_on_an_http_base_url_says_why_there_is_no_chart(
    engine: Container, fake_slack: FakeSlack
) -> None:
    settings = dataclasses.replace(
        engine.settings, slack_digest_channel="C0DIGEST", public_base_url="http://localhost:8000"
    )
    ticker = Ticker(build_container(settings, db=engine.db, clock=engine.clock), holder="digest-test")
    try:
        ticker.post_digest()
    finally:
        ticker.dispatcher.close()
    [digest] = fake_slack.successful("chat.postMessage")
    assert not images(digest["blocks"]) and "No trend chart" in json.dumps(digest["blocks"])


def trend_answer(app: TestClient, fake_slack: FakeSlack, text: str) -> dict[str, Any]:
    body = slash_command_body(text=text, user_id=MANAGER, response_url=fake_slack.response_url(MANAGER))
    assert post_to_slack_events(app, body).status_code == 200
    [answer] = fake_slack.wait_for("response_url", 1, timeout=10, successful=True)
    return answer


def test_nps_trend_answers_with_the_image_block_and_uploads_nothing(
    app: TestClient, fake_slack: FakeSlack, weeks: Seeder
) -> None:
    answer = trend_answer(app, fake_slack, "trend weekly channel:sms")
    [image] = images(answer["blocks"])
    assert image["alt_text"].endswith("+20, +40, +60, no responses")
    assert parse_qs(urlsplit(image["image_url"]).query)["channel"] == ["sms"]
    fetch_png(app, image["image_url"])
    assert fake_slack.count("files.getUploadURLExternal") == 0


def test_nps_trend_filtered_by_a_property_uploads_the_chart_instead(
    app: TestClient, fake_slack: FakeSlack, weeks: Seeder
) -> None:
    """A property value is a customer's data: it never goes into a URL."""
    answer = trend_answer(app, fake_slack, "trend weekly plan=pro")
    assert not images(answer["blocks"])
    fake_slack.wait_for("files.completeUploadExternal", 1, successful=True)


def test_nps_trend_on_an_http_base_url_uploads_the_chart(
    engine: Container, fake_slack: FakeSlack, weeks: Seeder
) -> None:
    with http_app(engine) as client:
        answer = trend_answer(client, fake_slack, "trend weekly")
        fake_slack.wait_for("files.completeUploadExternal", 1, successful=True)
    assert not images(answer["blocks"])
    assert next(iter(fake_slack.uploads().values())).startswith(b"\x89PNG")


# Slack fetches an image block's URL when the message or view is posted and refuses the whole payload when it
# cannot (this service down, a firewall, PUBLIC_BASE_URL wrong).
IMAGE_REFUSED = {
    "ok": False,
    "error": "invalid_blocks",
    "errors": ["downloading image failed [json-pointer:/blocks/3/image_url]"],
}


def test_the_digest_is_posted_without_the_chart_when_slack_cannot_fetch_it(
    fake_slack: FakeSlack, weeks: Seeder, digest_ticker: Ticker
) -> None:
    fake_slack.fail_next("chat.postMessage", status=200, body=IMAGE_REFUSED)
    digest_ticker.post_digest()
    [digest] = fake_slack.successful("chat.postMessage")
    assert not images(digest["blocks"]) and not block_problems(digest["blocks"])
    text = json.dumps(digest["blocks"])
    assert "Weekly NPS digest" in text and "could not fetch the trend chart" in text


# The views methods say it in their metadata instead.
VIEW_IMAGE_REFUSED = {
    "ok": False,
    "error": "invalid_arguments",
    "response_metadata": {
        "messages": ["[ERROR] downloading image failed [json-pointer:/view/blocks/3/image_url]"]
    },
}


@pytest.mark.parametrize("refusal", [IMAGE_REFUSED, VIEW_IMAGE_REFUSED])
def test_app_home_is_published_without_the_chart_when_slack_cannot_fetch_it(
    app: TestClient, fake_slack: FakeSlack, weeks: Seeder, refusal: dict[str, Any]
) -> None:
    fake_slack.fail_next("views.publish", status=200, body=refusal)
    assert post_to_slack_events(app, event_body(HOME_OPENED)).status_code == 200
    [published] = fake_slack.wait_for("views.publish", 1, successful=True)
    assert not images(published["view"]["blocks"])
    assert "could not fetch the trend chart" in json.dumps(published["view"])


def test_nps_trend_answers_without_the_image_when_slack_cannot_fetch_it(
    app: TestClient, fake_slack: FakeSlack, weeks: Seeder
) -> None:
    """The numbers still come back as text, and the chart as a file in the asker's DM."""
    fake_slack.fail_next("response_url", status=400, body={"error": "invalid_blocks"})  # its answer is text
    answer = trend_answer(app, fake_slack, "trend weekly")
    assert not images(answer["blocks"]) and "+60" in json.dumps(answer["blocks"])
    fake_slack.wait_for("files.completeUploadExternal", 1, successful=True)


def test_other_refusals_of_the_digest_are_not_retried_without_the_chart(
    fake_slack: FakeSlack, weeks: Seeder, digest_ticker: Ticker
) -> None:
    fake_slack.fail_next("chat.postMessage", status=200, body={"ok": False, "error": "channel_not_found"})
    with pytest.raises(SlackApiError):
        digest_ticker.post_digest()
    assert fake_slack.count("chat.postMessage") == 1


def test_the_alt_text_says_a_bucket_was_hidden_for_anonymity_not_that_nobody_answered() -> None:
    from datetime import UTC, datetime

    from bot.chart_blocks import alt_text
    from campaigns.scores.nps import Tally
    from campaigns.scores.queries import TrendPoint

    start = datetime(2026, 11, 2, tzinfo=UTC)
    shown = TrendPoint(start, start + timedelta(days=7), Tally(promoters=6), 100, 0.0)
    hidden = TrendPoint(
        start + timedelta(days=7), start + timedelta(days=14), Tally(), None, None, hidden=True
    )
    empty = TrendPoint(start + timedelta(days=14), start + timedelta(days=21), Tally(), None, None)
    text = alt_text([shown, hidden, empty], "weekly")
    assert text == (
        "NPS by week, oldest first: +100, hidden (fewer than 5 answers of an anonymous campaign), no responses"
    )
