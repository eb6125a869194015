"""The composition root: the one place that builds settings, database, channels and apps and wires them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from campaigns.clock import Clock, SystemClock
from service.settings import Settings
from storage.db import Database
from storage.enums import Channel

# The providers' clients (slack_sdk, twilio), the Slack side and the dispatcher are imported where they are
# built: a command that only reads the database (`nps alerts`, `nps campaigns list`) starts without them.
if TYPE_CHECKING:
    from bot.chart_links import ChartLinks
    from bot.deps import SlackDeps
    from campaigns.channels.base import Transport
    from campaigns.dispatch.dispatcher import DispatchConfig, Dispatcher
    from campaigns.planning.planner import PlanningRules
    from service.metrics.registry import Metrics

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    transports: dict[Channel, Transport] = field(default_factory=dict)
    # Slack, when configured: the client and the process's one alert poster, shared by web and scheduler.
    slack: SlackDeps | None = None

    @cached_property
    def metrics(self) -> Metrics:
        """This process's metrics, shared by the web app and the scheduler (GET /metrics)."""
        from service.metrics.registry import Metrics

        return Metrics(self.db, self.clock)

    @cached_property
    def chart_links(self) -> ChartLinks | None:
        """The signed links to the trend chart that the web app serves and the Slack side makes."""
        return chart_links(self.settings)

    @property
    def planning_rules(self) -> PlanningRules:
        from campaigns.planning.planner import PlanningRules

        return PlanningRules(
            min_days_between_surveys=self.settings.min_days_between_surveys,
            default_timezone=self.settings.timezone,
            quiet_hours=self.settings.quiet_hours,
        )

    def dispatch_config(self) -> DispatchConfig:
        from campaigns.dispatch.dispatcher import DispatchConfig

        s = self.settings
        return DispatchConfig(
            public_base_url=s.public_base_url,
            branding=s.branding,
            rules=self.planning_rules,
            # A batch must be sendable well within the claim timeout at the configured rate.
            batch_size=max(
                1, min(max(100, 4 * s.send_concurrency), s.send_rate * s.claim_timeout_seconds // 4)
            ),
            concurrency=s.send_concurrency,
            rate_per_second=float(s.send_rate),
            claim_timeout=timedelta(seconds=s.claim_timeout_seconds),
            admin_notices=s.admin_notices,
        )

    def new_dispatcher(self, worker_id: str | None = None) -> Dispatcher:
        from campaigns.dispatch.dispatcher import Dispatcher

        return Dispatcher(
            self.db, self.transports, clock=self.clock, config=self.dispatch_config(), worker_id=worker_id
        )

    def close(self) -> None:
        self.db.dispose()


def build_transports(settings: Settings) -> dict[Channel, Transport]:
    """The real providers where configured, the log transport otherwise."""
    from campaigns.channels.log import LogTransport

    sms: Transport = LogTransport(Channel.SMS)
    if settings.twilio_enabled:
        from campaigns.channels.sms import TwilioConfig, TwilioSms

        assert settings.twilio_account_sid and settings.twilio_auth_token
        sms = TwilioSms(
            TwilioConfig(
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token,
                api_url=settings.twilio_api_url,
                messaging_service_sid=settings.twilio_messaging_service_sid,
                from_number=settings.twilio_from_number,
                status_callback=f"{settings.public_base_url}/twilio/status",
            )
        )
    email: Transport = LogTransport(Channel.EMAIL)
    if settings.smtp_enabled:
        from campaigns.channels.email import SmtpConfig, SmtpEmail, sender_address

        assert settings.smtp_host and settings.email_from
        email = SmtpEmail(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=sender_address(settings.email_from, settings.branding.sender_name),
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                ssl=settings.smtp_ssl,
            )
        )
    return {Channel.SMS: sms, Channel.EMAIL: email}


def pool_options(settings: Settings) -> dict[str, int]:
    """The pool's size on PostgreSQL, where every send in flight may hold a connection at once. SQLite keeps
    SQLAlchemy's 5 + 10: it has one writer, and more connections only move the queue from the pool (30 s) to
    SQLite's busy timeout (5 s), where a reply that waits too long answers 503."""
    if settings.database_url.startswith("sqlite"):
        return {}
    return {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}


def build_container(
    settings: Settings, *, db: Database | None = None, clock: Clock | None = None
) -> Container:
    """Wire everything from settings; tests pass a `db` they already migrated and a clock they control."""
    db = db or Database.connect(settings.database_url, **pool_options(settings))
    clock = clock or SystemClock()
    return Container(
        settings=settings,
        db=db,
        clock=clock,
        transports=build_transports(settings),
        slack=build_slack(settings, db, clock) if settings.slack_enabled else None,
    )


def build_slack(settings: Settings, db: Database, clock: Clock) -> SlackDeps:
    """The Slack client and the one alert poster of this process, for the Slack app and the scheduler."""
    from slack_sdk import WebClient

    from bot.deps import SlackDeps
    from bot.pacing import ChannelPacer
    from bot.permissions import Directory, Permissions, Policy
    from bot.poster import AlertPoster, Channels

    # No automatic retries: slack_sdk's default resends a request whose connection was reset, and a reset after
    # Slack took a chat.postMessage would post the alert twice. The alert outbox settles such a post from the
    # channel's history instead; a listener's call that fails is answered with an error and can be repeated.
    client = WebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10, retry_handlers=[]
    )
    permissions = Permissions(
        Policy(
            admins=frozenset(settings.slack_admin_users),
            responders=frozenset(settings.slack_responders),
            responder_group=settings.slack_responder_group,
            alert_channel=settings.slack_alert_channel,
            personal_data=settings.slack_personal_data,
        ),
        Directory(client, clock),
        db,
    )
    poster = AlertPoster(
        db,
        client,
        clock=clock,
        channels=Channels(
            alerts=settings.slack_alert_channel,
            kudos=settings.slack_kudos_channel,
            admin=settings.slack_admin_channel,
        ),
        disclosure=permissions.disclosure,
        alerts_per_minute=settings.slack_alerts_per_minute,
        pacer=ChannelPacer(settings.slack_posts_per_minute),
    )
    return SlackDeps(
        db=db,
        clock=clock,
        client=client,
        poster=poster,
        signing_secret=settings.slack_signing_secret,
        timezone=ZoneInfo(settings.timezone),
        permissions=permissions,
        digest_channel=settings.slack_digest_channel,
        benchmark=settings.benchmark,
        charts=chart_links(settings),
    )


def chart_links(settings: Settings) -> ChartLinks | None:
    """Signed links to the trend chart (bot.chart_links), keyed by a secret every process already shares: NPS_SECRET_KEY,
    else SLACK_SIGNING_SECRET, else SLACK_BOT_TOKEN (Socket Mode). None without any of them: no Slack, no chart."""
    from bot.chart_links import ChartLinks, derive_key

    secret = settings.secret_key or settings.slack_signing_secret or settings.slack_bot_token
    return ChartLinks(settings.public_base_url, derive_key(secret)) if secret else None


def integration_report(settings: Settings) -> list[str]:
    """One line per integration: configured, or the fallback it uses. Logged once at startup."""
    slack_mode = "Socket Mode" if settings.slack_app_token else "HTTP (/slack/events)"
    return [
        f"Slack: {slack_mode}, API {settings.slack_api_url}"
        if settings.slack_enabled
        else "Slack: not configured (SLACK_BOT_TOKEN unset); alerts and /nps are disabled",
        f"SMS: Twilio at {settings.twilio_api_url}"
        if settings.twilio_enabled
        else "SMS: Twilio not configured; messages go to the log transport",
        f"Email: SMTP {settings.smtp_host}:{settings.smtp_port}"
        if settings.smtp_enabled
        else "Email: SMTP not configured; messages go to the log transport",
        "HTTP API: enabled" if settings.api_keys else "HTTP API: keys only from `nps apikeys create`",
    ]
