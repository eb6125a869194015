"""Signed chart links: what a link names, that only our signature opens it, and only until it expires."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from bot.chart_links import LIFETIME, PATH, ChartLinks, LinkError, TrendChart, derive_key, hour_after
from campaigns.scores.filters import Filters
from campaigns.scores.periods import Period
from storage.enums import Channel

NOW = datetime(2026, 11, 23, 10, 17, 42, tzinfo=UTC)
LINKS = ChartLinks("https://nps.example.com", derive_key("a-server-secret-of-enough-length-0123"))
CHART = TrendChart("weekly", datetime(2026, 9, 7, tzinfo=UTC), datetime(2026, 11, 23, 11, tzinfo=UTC))


def params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def changed(url: str, **values: str) -> list[tuple[str, str]]:
    return [(name, values.get(name, value)) for name, value in params(url)]


def test_a_link_round_trips_to_its_chart_and_expiry() -> None:
    chart = TrendChart("monthly", CHART.start, CHART.end, "pulse", Channel.SMS)
    url = LINKS.trend_url(chart, now=NOW)
    assert url.startswith(f"https://nps.example.com{PATH}?")
    verified, expires = LINKS.verify(params(url), now=NOW)
    assert verified == chart
    assert expires == int((NOW + LIFETIME).replace(minute=0, second=0).timestamp()) + 3600  # up to the hour


def test_links_made_within_the_same_hour_are_one_url() -> None:
    assert LINKS.trend_url(CHART, now=NOW) == LINKS.trend_url(CHART, now=NOW + timedelta(minutes=30))
    assert hour_after(NOW) == datetime(2026, 11, 23, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    "tamper",
    [
        {"from": "1756000000"},
        {"to": "1800000000"},
        {"g": "monthly"},
        {"expires": "1900000000"},
        {"sig": "0" * 64},
    ],
)
def test_a_tampered_parameter_is_refused_with_403(tamper: dict[str, str]) -> None:
    with pytest.raises(LinkError) as refused:
        LINKS.verify(changed(LINKS.trend_url(CHART, now=NOW), **tamper), now=NOW)
    assert refused.value.status == 403


def test_an_added_filter_breaks_the_signature() -> None:
    url = LINKS.trend_url(CHART, now=NOW)
    with pytest.raises(LinkError) as refused:
        LINKS.verify([*params(url), ("channel", "sms")], now=NOW)
    assert refused.value.status == 403


def test_an_expired_link_is_refused_with_403() -> None:
    url = LINKS.trend_url(CHART, now=NOW)
    LINKS.verify(params(url), now=NOW + LIFETIME)  # still valid up to the rounded hour
    with pytest.raises(LinkError) as refused:
        LINKS.verify(params(url), now=NOW + LIFETIME + timedelta(hours=1))
    assert refused.value.status == 403 and "expired" in refused.value.message


@pytest.mark.parametrize("missing", ["sig", "expires"])
def test_a_link_without_signature_or_expiry_is_refused_with_403(missing: str) -> None:
    with pytest.raises(LinkError) as refused:
        LINKS.verify([p for p in params(LINKS.trend_url(CHART, now=NOW)) if p[0] != missing], now=NOW)
    assert refused.value.status == 403


def test_another_key_does_not_open_the_link() -> None:
    other = ChartLinks(LINKS.base_url, derive_key("another-server-secret-of-enough-length"))
    with pytest.raises(LinkError) as refused:
        other.verify(params(LINKS.trend_url(CHART, now=NOW)), now=NOW)
    assert refused.value.status == 403


def test_the_key_is_not_the_secret_itself() -> None:
    secret = "a-server-secret-of-enough-length-0123"
    assert derive_key(secret) not in (secret.encode(), derive_key(secret + "x"))
    assert len(derive_key(secret)) == 32


@pytest.mark.parametrize(
    "odd",
    [
        {"g": "daily"},
        {"from": "yesterday"},
        {"to": "-5"},
        {"from": "1800000000"},  # after `to`
        {"from": "1000000000"},  # a period of decades
        {"to": "99999999999999999999"},
        {"channel": "fax"},
        {"campaign": "a\nb"},
    ],
)
def test_odd_parameters_are_a_400(odd: dict[str, str]) -> None:
    items = dict(params(LINKS.trend_url(CHART, now=NOW)))
    items.update(odd)
    with pytest.raises(LinkError) as refused:
        LINKS.verify(list(items.items()), now=NOW)
    assert refused.value.status == 400


def test_repeated_and_unknown_parameters_are_a_400() -> None:
    items = params(LINKS.trend_url(CHART, now=NOW))
    for extra in [("g", "weekly"), ("debug", "1")]:
        with pytest.raises(LinkError) as refused:
            LINKS.verify([*items, extra], now=NOW)
        assert refused.value.status == 400


def test_the_url_holds_no_customer_data() -> None:
    """A trend filtered by a contact property (a customer's value) gets no link; campaign and channel may."""
    period = Period(CHART.start, CHART.end)
    assert TrendChart.of("weekly", period, Filters(properties=(("email", "ana@example.org"),))) is None
    chart = TrendChart.of("weekly", period, Filters("pulse", Channel.EMAIL))
    assert chart is not None
    query = urlsplit(LINKS.trend_url(chart, now=NOW)).query
    assert set(dict(parse_qsl(query))) == {"g", "from", "to", "campaign", "channel", "expires", "sig"}
    assert "ana" not in query and urlencode({"campaign": "pulse"}) in query


def test_only_an_https_base_is_public() -> None:
    assert LINKS.public
    assert not ChartLinks("http://localhost:8000", LINKS.key).public


def test_a_chart_no_link_could_name_gets_none() -> None:
    period = Period(CHART.start, CHART.end)
    assert TrendChart.of("weekly", period, Filters("a\tb")) is None
    assert TrendChart.of("monthly", Period(CHART.end - timedelta(days=4000), CHART.end), Filters()) is None


@pytest.mark.parametrize("channel", list(Channel))
def test_a_channel_link_cannot_be_turned_into_a_campaign_link_of_the_same_name(channel: Channel) -> None:
    """`sms` and `email` are valid campaign names: the signature says which filter a value is, so a link to
    all campaigns' SMS answers does not also open the chart of a campaign called `sms`."""
    url = LINKS.trend_url(TrendChart("weekly", CHART.start, CHART.end, channel=channel), now=NOW)
    swapped = [("campaign" if name == "channel" else name, value) for name, value in params(url)]
    with pytest.raises(LinkError) as refused:
        LINKS.verify(swapped, now=NOW)
    assert refused.value.status == 403


def test_a_base_url_with_a_path_prefix_or_an_upper_case_scheme_is_public_and_keeps_its_path() -> None:
    """PUBLIC_BASE_URL=https://x.example/nps behind a proxy that strips /nps; the scheme is case-insensitive
    (PUBLIC_BASE_URL accepts `HTTPS://`), and Slack fetches such a link over https."""
    for base in ("https://x.example/nps", "HTTPS://x.example/nps"):
        links = ChartLinks(base, LINKS.key)
        url = links.trend_url(CHART, now=NOW)
        assert links.public and url.startswith(f"{base}{PATH}?")
        assert links.verify(params(url), now=NOW)[0] == CHART


def test_a_link_that_expires_later_than_a_lifetime_from_now_is_refused() -> None:
    """However it was signed (a longer LIFETIME of an earlier release, a clock far ahead), a link opens charts
    for at most LIFETIME from now (and the rounding hour), which also caps how long caches keep its PNG."""
    for later in (LIFETIME * 2, timedelta(days=365 * 100)):
        url = dataclasses.replace(LINKS, lifetime=later).trend_url(CHART, now=NOW)
        with pytest.raises(LinkError) as refused:
            LINKS.verify(params(url), now=NOW)
        assert refused.value.status == 403
    LINKS.verify(
        params(
            dataclasses.replace(LINKS, lifetime=LIFETIME).trend_url(CHART, now=NOW + timedelta(minutes=59))
        ),
        now=NOW,
    )
