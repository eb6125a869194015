"""What the Slack app needs from the service, as one explicit value: the composition root
(`service.container`) builds it once per process, with the one alert poster the scheduler uses too."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from slack_sdk import WebClient

from bot.chart_links import ChartLinks
from bot.permissions import Permissions
from bot.poster import AlertPoster
from campaigns.clock import Clock
from campaigns.scores.nps import Benchmark
from storage.db import Database


@dataclass(frozen=True)
class SlackDeps:
    db: Database
    clock: Clock
    client: WebClient  # pointed at SLACK_API_URL
    poster: AlertPoster  # the process's one poster: its runs never overlap
    signing_secret: str | None  # None in Socket Mode
    timezone: ZoneInfo  # reports and periods (NPS_TIMEZONE)
    permissions: Permissions  # who may act on follow-ups, see personal data, control campaigns
    digest_channel: str | None = None
    benchmark: Benchmark | None = None  # NPS_BENCHMARK, shown beside the score
    charts: ChartLinks | None = None  # signed links to the trend chart served under PUBLIC_BASE_URL
