"""`GET /charts/trend.png`: the chart of a signed link as a PNG, 403 for a link we did not sign or that expired,
400 for a malformed one, and each link drawn once."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bot.chart_links import LIFETIME, ChartLinks, TrendChart, hour_after
from campaigns.clock import ManualClock
from campaigns.scores.periods import whole_buckets
from service.container import Container, build_container, chart_links
from service.web.app import create_app
from service.web.charts import CACHE_SIZE, Busy, ChartCache
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL
from tests.fixtures.seeding import Seeder
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.twilio_webhooks import new_message_sid, post_signed, status_callback_params


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    return slack_engine


def links_of(engine: Container) -> ChartLinks:
    assert engine.slack is not None and engine.slack.charts is not None
    return engine.slack.charts


def home_chart(engine: Container) -> TrendChart:
    now = engine.clock.now()
    period = whole_buckets("weekly", 12, now=now, tz=ZoneInfo(engine.settings.timezone))
    return TrendChart("weekly", period.start, hour_after(now))


def path_of(url: str) -> str:
    assert url.startswith(PUBLIC_URL + "/")
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_a_signed_link_serves_the_chart_as_a_png(app: TestClient, engine: Container) -> None:
    Seeder(engine.db).mix(6, 2, 2, at=engine.clock.now() - timedelta(days=3))
    response = app.get(path_of(links_of(engine).trend_url(home_chart(engine), now=engine.clock.now())))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.size == (1200, 675)
    max_age = int(response.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert LIFETIME.total_seconds() <= max_age <= LIFETIME.total_seconds() + 3600
    assert response.headers["cache-control"].startswith("public")


def test_a_link_is_drawn_once_and_served_from_memory_until_it_expires(
    app: TestClient, engine: Container
) -> None:
    """Requests for the same link get the PNG drawn the first time, even when responses arrive meanwhile."""
    seed = Seeder(engine.db)
    seed.mix(6, 2, 2, at=engine.clock.now() - timedelta(days=3))
    links, chart = links_of(engine), home_chart(engine)
    url = links.trend_url(chart, now=engine.clock.now())
    first = app.get(path_of(url)).content
    seed.mix(0, 0, 9, at=engine.clock.now() - timedelta(days=2))
    assert app.get(path_of(url)).content == first
    fresh = links.trend_url(chart, now=engine.clock.now() + timedelta(hours=2))  # a later link: drawn anew
    assert app.get(path_of(fresh)).content != first


def test_tampered_expired_and_unsigned_links_are_403_with_a_short_text(
    app: TestClient, engine: Container
) -> None:
    assert isinstance(engine.clock, ManualClock)
    url = path_of(links_of(engine).trend_url(home_chart(engine), now=engine.clock.now()))
    tampered = url.replace("g=weekly", "g=monthly")
    unsigned = url.split("&sig=")[0]
    for refused in (tampered, unsigned, "/charts/trend.png"):
        response = app.get(refused)
        assert response.status_code == 403 and response.headers["content-type"].startswith("text/plain")
        assert "Traceback" not in response.text and len(response.text) < 200
    engine.clock.advance(LIFETIME + timedelta(hours=1))
    expired = app.get(url)
    assert expired.status_code == 403 and "expired" in expired.text


@pytest.mark.parametrize("odd", ["&g=weekly", "&x=1", "&channel=fax"])
def test_odd_parameters_are_400(app: TestClient, engine: Container, odd: str) -> None:
    url = path_of(links_of(engine).trend_url(home_chart(engine), now=engine.clock.now()))
    response = app.get(url + odd)
    assert response.status_code == 400 and response.headers["cache-control"] == "no-store"


def test_another_deployments_link_is_403(app: TestClient, engine: Container) -> None:
    other = ChartLinks(PUBLIC_URL, b"k" * 32)
    response = app.get(path_of(other.trend_url(home_chart(engine), now=engine.clock.now())))
    assert response.status_code == 403


def test_without_any_secret_no_chart_is_served(client: TestClient) -> None:
    """No NPS_SECRET_KEY and no Slack: nobody makes links, and none is served."""
    assert client.get("/charts/trend.png?g=weekly&from=1&to=2&expires=3&sig=" + "0" * 64).status_code == 403


def test_with_nps_secret_key_the_web_app_serves_links_without_slack(container: Container) -> None:
    settings = dataclasses.replace(container.settings, secret_key="a-long-random-secret-0123456789abcdef")
    served = build_container(settings, db=container.db)
    assert served.slack is None and served.chart_links is not None
    chart = TrendChart("monthly", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
    url = served.chart_links.trend_url(chart, now=served.clock.now())
    with TestClient(create_app(served)) as client:
        response = client.get(f"/charts/trend.png?{urlsplit(url).query}")
    assert response.status_code == 200 and Image.open(io.BytesIO(response.content)).size == (1200, 675)


def test_the_key_comes_from_nps_secret_key_else_from_the_slack_secrets(engine: Container) -> None:
    """Every process (web, scheduler) derives the same key from the settings they share: no new secret."""
    settings = engine.settings
    from_signing = chart_links(settings)
    with_secret = chart_links(dataclasses.replace(settings, secret_key="s" * 16 + "0123456789abcdefgh"))
    socket_mode = chart_links(
        dataclasses.replace(settings, slack_signing_secret=None, slack_app_token="xapp-1")
    )
    assert from_signing and with_secret and socket_mode
    assert len({from_signing.key, with_secret.key, socket_mode.key}) == 3
    again = build_container(settings, db=engine.db, clock=engine.clock)
    assert again.slack is not None and again.slack.charts == again.chart_links == from_signing


def test_each_link_is_drawn_once_at_a_time_and_at_most_two_links_at_once() -> None:
    """Five requests for one link wait for one drawing; a third link finds both slots taken and gets Busy (the
    route's 503) instead of queueing without end; a drawn link is then served without drawing."""
    release, lock = threading.Event(), threading.Lock()
    calls: Counter[str] = Counter()
    running, peak = [0], [0]

    def drawing(name: str) -> Callable[[], bytes]:
        def draw() -> bytes:
            with lock:
                calls[name] += 1
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            release.wait(10)
            with lock:
                running[0] -= 1
            return name.encode()

        return draw

    async def scenario() -> tuple[list[bytes], BaseException | bytes, bytes]:
        cache = ChartCache(renders=2, queue_seconds=0.2)
        same = [asyncio.create_task(cache.png("a", 2_000, 1_000, drawing("a"))) for _ in range(5)]
        other = asyncio.create_task(cache.png("b", 2_000, 1_000, drawing("b")))
        await asyncio.sleep(0.05)
        [third] = await asyncio.gather(cache.png("c", 2_000, 1_000, drawing("c")), return_exceptions=True)
        release.set()
        drawn = await asyncio.gather(*same, other)
        again = await cache.png("a", 2_000, 1_500, drawing("a"))
        return drawn, third, again

    drawn, third, again = asyncio.run(scenario())
    assert drawn == [b"a"] * 5 + [b"b"] and isinstance(third, Busy) and again == b"a"
    assert calls == Counter({"a": 1, "b": 1}) and peak[0] == 2


def test_a_head_request_gets_the_pngs_headers_and_length_without_a_body(
    app: TestClient, engine: Container
) -> None:
    """Image proxies may ask HEAD first: the same status, type and Content-Length as GET, no redirect."""
    url = path_of(links_of(engine).trend_url(home_chart(engine), now=engine.clock.now()))
    head = app.head(url, follow_redirects=False)
    get = app.get(url, follow_redirects=False)
    assert head.status_code == get.status_code == 200
    assert head.headers["content-type"] == "image/png" and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    assert app.head(url.replace("g=weekly", "g=monthly")).status_code == 403


def test_a_database_failure_while_drawing_is_a_503_with_retry_after_and_is_not_kept(
    app: TestClient, engine: Container
) -> None:
    """The database away mid-drawing: a short 503 that Slack's proxy may retry, never a 500 or a trace; the
    failure is not cached, so the same link draws once the database is back."""
    url = path_of(links_of(engine).trend_url(home_chart(engine), now=engine.clock.now()))
    with engine.db.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE responses RENAME TO responses_away")
    try:
        failed = app.get(url)
    finally:
        with engine.db.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE responses_away RENAME TO responses")
    assert failed.status_code == 503 and failed.headers["retry-after"].isdigit()
    assert failed.headers["cache-control"] == "no-store" and failed.headers["content-type"].startswith(
        "text/"
    )
    assert "Traceback" not in failed.text and "responses" not in failed.text and len(failed.text) < 200
    assert app.get(url).status_code == 200


@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_drawing_gives_up_on_a_locked_table_and_frees_its_slot(app: TestClient, engine: Container) -> None:
    """`nps db upgrade` altering `responses` holds ACCESS EXCLUSIVE on it: a drawing that waited on the lock would
    hold one of the two slots for as long as the migration runs (every chart a 503), and its thread. It gives up
    instead, a 503 with Retry-After, while /healthz answers meanwhile; the link draws once the lock is gone.

    20 s is a generous bound against a request that otherwise never answers while the lock is held."""
    url = path_of(links_of(engine).trend_url(home_chart(engine), now=engine.clock.now()))
    with engine.db.engine.connect() as migration, ThreadPoolExecutor(1) as pool:
        locked = migration.begin()
        migration.exec_driver_sql("LOCK TABLE responses IN ACCESS EXCLUSIVE MODE")
        chart = pool.submit(app.get, url)
        try:
            assert app.get("/healthz").status_code == 200
            answer = chart.result(timeout=20)
        except FutureTimeout:
            answer = None
        finally:
            locked.rollback()
    assert answer is not None, "GET /charts/trend.png hung while the responses table was locked"
    assert answer.status_code == 503 and answer.headers["retry-after"].isdigit()
    assert app.get(url).status_code == 200


@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_twilio_and_healthz_are_answered_while_both_drawing_slots_wait_on_a_lock(
    app: TestClient, engine: Container
) -> None:
    """Three links drawn while `responses` is locked: two hold the slots, one queues. The drawings run on worker
    threads and the queue on the event loop without blocking it, so a Twilio status callback (whose tables are
    not locked) and /healthz are answered while the charts still wait."""
    links, now = links_of(engine), engine.clock.now()
    charts = [
        home_chart(engine),
        TrendChart("monthly", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)),
        TrendChart("weekly", datetime(2026, 9, 7, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)),
    ]
    urls = [path_of(links.trend_url(chart, now=now)) for chart in charts]
    callback = status_callback_params(new_message_sid(), "delivered", "+15005550001", FROM_NUMBER)
    with engine.db.engine.connect() as migration, ThreadPoolExecutor(3) as pool:
        locked = migration.begin()
        migration.exec_driver_sql("LOCK TABLE responses IN ACCESS EXCLUSIVE MODE")
        try:
            drawing = [pool.submit(app.get, url) for url in urls]
            assert app.get("/healthz").status_code == 200
            status = post_signed(app, f"{PUBLIC_URL}/twilio/status", callback, DEFAULT_AUTH_TOKEN)
            pending = sum(not future.done() for future in drawing)
        finally:
            locked.rollback()
        answers = [future.result(timeout=30) for future in drawing]
    assert status.status_code < 300 and pending == 3
    assert {answer.status_code for answer in answers} <= {200, 503}


def test_many_links_keep_at_most_cache_size_pngs_the_oldest_drawn_again() -> None:
    """More distinct valid links than the cache holds: memory stays at CACHE_SIZE PNGs; the least recently
    served link is drawn again when asked, the recently served ones are not."""
    calls: Counter[str] = Counter()

    def drawing(name: str) -> Callable[[], bytes]:
        def draw() -> bytes:
            calls[name] += 1
            return name.encode() * 1000

        return draw

    async def scenario() -> None:
        cache = ChartCache()
        for index in range(CACHE_SIZE):
            await cache.png(f"k{index}", 2_000, 1_000, drawing(f"k{index}"))
        await cache.png("k0", 2_000, 1_000, drawing("k0"))  # the digest's link, say: fetched again and again
        await cache.png("new", 2_000, 1_000, drawing("new"))  # one more than the cache holds
        for name in ("k0", "k1", "new"):
            await cache.png(name, 2_000, 1_000, drawing(name))

    asyncio.run(scenario())
    assert (calls["k0"], calls["k1"], calls["new"]) == (1, 2, 1)
    assert sum(calls.values()) == CACHE_SIZE + 2
