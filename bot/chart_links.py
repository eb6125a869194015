"""Signed, expiring links to the trend chart that the web app draws at `GET /charts/trend.png`.

Slack's image blocks take a URL that Slack's servers fetch over the public internet, so the chart is served by
this service under PUBLIC_BASE_URL. A link names the chart (granularity, period, campaign and channel: never a
customer's data, so a chart filtered by a contact property is uploaded instead) and when it stops working, and
carries HMAC-SHA256 over both. The key is derived from a secret the service already has (see
`service.container.chart_links`) with a label of its own, so a chart signature can never stand for another.

Expiry is rounded up to the hour: every link made for the same chart within an hour is the same URL, which the
web app draws once and Slack's image proxy fetches once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import get_args
from urllib.parse import urlencode, urlsplit

from campaigns.scores.filters import Filters
from campaigns.scores.periods import Granularity, Period
from storage.enums import Channel

PATH = "/charts/trend.png"
# Slack's image proxy fetches an image when a message or view is first shown, and again when its cache drops
# it: a week covers a digest read a few days late; publishing App Home again makes a new link.
LIFETIME = timedelta(days=7)
ROUNDING = 3600  # seconds: links made within the same hour are one URL
# A link expires at most a lifetime from now, give or take the rounding and a clock up to an hour ahead on the
# process that made it: a link signed for longer (an earlier, longer LIFETIME) opens nothing.
_SKEW = 2 * ROUNDING
MAX_SPAN = timedelta(days=3660)  # the trend query's own cap is 120 buckets; this bounds a link before it
MAX_CAMPAIGN = 200
_LABEL = b"nps-bot/chart-links/v1"
_KNOWN = ("g", "from", "to", "campaign", "channel", "expires", "sig")
_UNIX = re.compile(r"[0-9]{1,11}")  # up to year 5138: datetime never overflows
_SIG = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LinkError(ValueError):
    """A chart link that is not served: 400 when malformed, 403 when not signed by us or expired."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TrendChart:
    """Which trend chart: the buckets, the period [start, end) in UTC, and the filters a URL may carry."""

    granularity: Granularity
    start: datetime
    end: datetime
    campaign: str | None = None
    channel: Channel | None = None

    @classmethod
    def of(cls, granularity: Granularity, period: Period, filters: Filters) -> TrendChart | None:
        """The chart of a trend query; None when it filters on contact properties, customers' values that
        must not appear in a URL (or when no link could name it: a campaign name no link takes, a period over
        MAX_SPAN)."""
        campaign = filters.campaign
        if filters.properties or (campaign is not None and not _campaign_name(campaign)):
            return None
        if not timedelta(0) < period.end - period.start <= MAX_SPAN:
            return None
        return cls(
            granularity,
            _whole_second(period.start),
            _whole_second(period.end),
            filters.campaign,
            filters.channel,
        )

    @property
    def filters(self) -> Filters:
        return Filters(self.campaign, self.channel)

    def period(self, tz: tzinfo) -> Period:
        return Period(self.start, self.end, tz=tz)


def derive_key(secret: str) -> bytes:
    """The chart links' own key: HMAC of a fixed label under the server secret (domain separation)."""
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()


def hour_after(moment: datetime) -> datetime:
    """`moment` rounded up to the whole hour (UTC): a period end that stays the same for an hour."""
    seconds = math.ceil(moment.timestamp() / ROUNDING) * ROUNDING
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class ChartLinks:
    base_url: str  # PUBLIC_BASE_URL, without a trailing slash
    key: bytes = field(repr=False)
    lifetime: timedelta = LIFETIME

    @property
    def public(self) -> bool:
        """Slack fetches images only over https from the public internet: an http:// base gets no image."""
        return urlsplit(self.base_url).scheme.lower() == "https"  # PUBLIC_BASE_URL may say HTTPS://

    def trend_url(self, chart: TrendChart, *, now: datetime) -> str:
        expires = math.ceil((now + self.lifetime).timestamp() / ROUNDING) * ROUNDING
        params = [*_chart_params(chart), ("expires", str(expires))]
        params.append(("sig", self._signature(chart, expires)))
        return f"{self.base_url}{PATH}?{urlencode(params)}"

    def verify(self, items: Sequence[tuple[str, str]], *, now: datetime) -> tuple[TrendChart, int]:
        """The chart a link's query parameters ask for and when the link expires (Unix seconds).

        Raises LinkError: 400 for unknown, repeated or malformed parameters; 403 for a missing or wrong signature
        or an expired link, or one that would live longer than a lifetime from now. The signature is compared in
        constant time."""
        values = _single_values(items)
        expires, signature = values.get("expires", ""), values.get("sig", "")
        if not _UNIX.fullmatch(expires) or not _SIG.fullmatch(signature):
            raise LinkError(403, "This chart link is not signed.")
        chart = _parse_chart(values)
        if not hmac.compare_digest(signature, self._signature(chart, int(expires))):
            raise LinkError(403, "This chart link is not valid.")
        if int(expires) <= now.timestamp():
            raise LinkError(
                403, "This chart link has expired; open App Home or ask /nps again for a new one."
            )
        if int(expires) > (now + self.lifetime).timestamp() + _SKEW:
            raise LinkError(403, "This chart link is not valid.")
        return chart, int(expires)

    def _signature(self, chart: TrendChart, expires: int) -> str:
        # Each value with its name: the filters are optional, so values alone would let a channel `sms` stand
        # for a campaign called `sms`.
        message = json.dumps(["trend", _chart_params(chart), expires])
        return hmac.new(self.key, message.encode(), hashlib.sha256).hexdigest()


def _campaign_name(text: str) -> bool:
    return 0 < len(text) <= MAX_CAMPAIGN and not _CONTROL.search(text)


def _whole_second(moment: datetime) -> datetime:
    return datetime.fromtimestamp(math.ceil(moment.timestamp()), UTC)


def _chart_params(chart: TrendChart) -> list[tuple[str, str]]:
    params = [
        ("g", chart.granularity),
        ("from", str(int(chart.start.timestamp()))),
        ("to", str(int(chart.end.timestamp()))),
    ]
    if chart.campaign is not None:
        params.append(("campaign", chart.campaign))
    if chart.channel is not None:
        params.append(("channel", chart.channel.value))
    return params


def _single_values(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in items:
        if name not in _KNOWN:
            raise LinkError(400, "A chart link takes only the parameters it was made with.")
        if name in values:
            raise LinkError(400, "A chart link names each parameter once.")
        values[name] = value
    return values


def _parse_chart(values: dict[str, str]) -> TrendChart:
    granularity = values.get("g", "")
    if granularity not in get_args(Granularity):
        raise LinkError(400, "A chart link's g is weekly or monthly.")
    start, end = values.get("from", ""), values.get("to", "")
    if not (_UNIX.fullmatch(start) and _UNIX.fullmatch(end)):
        raise LinkError(400, "A chart link's from and to are Unix times.")
    first, last = datetime.fromtimestamp(int(start), UTC), datetime.fromtimestamp(int(end), UTC)
    if not timedelta(0) < last - first <= MAX_SPAN:
        raise LinkError(400, "A chart link's period is empty or too long.")
    campaign = values.get("campaign")
    if campaign is not None and not _campaign_name(campaign):
        raise LinkError(400, "A chart link's campaign is not a campaign name.")
    channel = values.get("channel")
    if channel is not None and channel not in {c.value for c in Channel}:
        raise LinkError(400, "A chart link's channel is sms or email.")
    return TrendChart(granularity, first, last, campaign, Channel(channel) if channel else None)  # type: ignore[arg-type]
