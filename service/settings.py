"""Settings: read once from the environment (and `.env`), parsed strictly, secrets never printed.

Every variable is listed in `config.example.env`. A bad value stops startup with an error naming the variable;
nothing here guesses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from campaigns.messages.branding import DEFAULT_ACCENT, Branding, accent_problem
from campaigns.planning.quiet_hours import QuietRule, parse_rules, shipped_rules
from campaigns.scores.nps import Benchmark
from storage.db import DEFAULT_DATABASE_URL

_PLAIN_NETLOC = re.compile(r"[A-Za-z0-9.\-_~%:@\[\]]+")
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}

# The placeholders config.example.env shows for each secret: a copied file whose secrets were never filled in
# must not start a service that trusts them (tests/service/test_settings.py keeps this in step with the file).
_PLACEHOLDERS = {
    "SLACK_BOT_TOKEN": "xoxb-your-bot-token",
    "SLACK_SIGNING_SECRET": "your-signing-secret",
    "SLACK_APP_TOKEN": "xapp-your-app-level-token",
    "TWILIO_AUTH_TOKEN": "your-auth-token",
    "SMTP_PASSWORD": "your-smtp-password",
    "NPS_API_KEYS": "change-me-to-a-long-random-string",
    "NPS_SECRET_KEY": "change-me-to-a-long-random-string",
    "NPS_METRICS_TOKEN": "change-me-to-a-long-random-string",
}
# NPS_SECRET_KEY and NPS_API_KEYS are only as strong as the admin made them (the other secrets are issued by
# Slack, Twilio or the mail provider): at least this long, and not a repetition of a few characters.
_MIN_KEY_LENGTH = 32
_MIN_DISTINCT_CHARACTERS = 8


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    public_base_url: str = "http://localhost:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    # How long `nps serve` keeps an idle HTTP connection open: longer than the proxy in front of it does (nginx's
    # upstream keepalive and an AWS ALB keep theirs 60 s), so that the proxy, not the server, closes it first.
    http_keep_alive_seconds: int = 75
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object per line
    log_libraries: str | None = (
        None  # the noisy libraries' level (service.logs); WARNING unless LOG_LEVEL=DEBUG
    )

    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    slack_alert_channel: str | None = None
    slack_kudos_channel: str | None = None
    slack_digest_channel: str | None = None
    slack_admin_channel: str | None = None
    slack_admin_users: tuple[str, ...] = ()
    # Who may act on follow-ups and see personal data (bot.permissions): these users and this user group when
    # either is set, otherwise the members of the alert's channel.
    slack_responders: tuple[str, ...] = ()
    slack_responder_group: str | None = None
    slack_personal_data: str = "responders"  # or "admins"
    # Bursts (bot.bursts): detractor alerts a channel gets one by one per minute before the rest are summarised
    # (0: never summarise), and the posts a minute per channel the poster paces itself to (0: no pacing).
    slack_alerts_per_minute: int = 10
    slack_posts_per_minute: int = 50

    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_messaging_service_sid: str | None = None
    twilio_from_number: str | None = None
    twilio_api_url: str = "https://api.twilio.com"

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    email_from: str | None = None
    branding: Branding = field(default_factory=Branding)

    api_keys: tuple[str, ...] = field(default=(), repr=False)
    api_docs: bool = False
    # When set, GET /metrics wants `Authorization: Bearer <token>`; otherwise it is open like /readyz.
    metrics_token: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    min_days_between_surveys: int = 90
    tick_seconds: int = 15
    timezone: str = "UTC"
    send_rate: int = 10
    send_concurrency: int = 16
    # Connections this process keeps (NPS_DB_POOL_SIZE; default: a send in flight each, plus 8 for the web
    # requests, the scheduler and the batch's own reads) and may open beyond them at a peak.
    db_pool_size: int = 24
    db_max_overflow: int = 8
    claim_timeout_seconds: int = 300
    escalate_unacknowledged_hours: int = 4
    # Legal quiet hours for texts: the shipped campaigns/quiet_hours.yaml, with NPS_QUIET_HOURS_FILE's rules over it.
    quiet_hours_file: str | None = None
    quiet_hours: Mapping[str, QuietRule] = field(default_factory=shipped_rules, repr=False)
    benchmark: Benchmark | None = None  # NPS_BENCHMARK: shown beside the score in /nps and `nps score`

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    @property
    def admin_notices(self) -> bool:
        """Channel pauses and held Slack alerts are announced in SLACK_ADMIN_CHANNEL (otherwise only logged)."""
        return bool(self.slack_enabled and self.slack_admin_channel)

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host)

    def describe(self) -> dict[str, str]:
        """Non-secret values, for `nps doctor` and the startup log."""
        hidden = {f.name for f in fields(self) if not f.repr}
        return {
            f.name: ("(set)" if getattr(self, f.name) else "(not set)")
            if f.name in hidden
            else str(getattr(self, f.name))
            for f in fields(self)
        }


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Build Settings from `environ` (default: os.environ) over the values of `env_file`, if it exists."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return parse_settings(values)


def parse_settings(env: Mapping[str, str]) -> Settings:
    r = _Reader(env)
    settings = Settings(
        database_url=r.database_url("DATABASE_URL", DEFAULT_DATABASE_URL),
        public_base_url=r.url("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/"),
        host=r.text("HOST") or "127.0.0.1",
        port=r.integer("PORT", 8000, low=1, high=65535),
        http_keep_alive_seconds=r.integer("NPS_HTTP_KEEP_ALIVE_SECONDS", 75, low=1, high=3600),
        log_level=r.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        log_format=r.choice("LOG_FORMAT", "TEXT", ("TEXT", "JSON")).lower(),
        log_libraries=r.optional_choice("LOG_LIBRARIES", ("DEBUG", "INFO", "WARNING", "ERROR")),
        slack_bot_token=r.text("SLACK_BOT_TOKEN"),
        slack_signing_secret=r.text("SLACK_SIGNING_SECRET"),
        slack_app_token=r.text("SLACK_APP_TOKEN"),
        slack_api_url=_with_trailing_slash(r.url("SLACK_API_URL", "https://slack.com/api/")),
        slack_alert_channel=r.text("SLACK_ALERT_CHANNEL"),
        slack_kudos_channel=r.text("SLACK_KUDOS_CHANNEL"),
        slack_digest_channel=r.text("SLACK_DIGEST_CHANNEL"),
        slack_admin_channel=r.text("SLACK_ADMIN_CHANNEL"),
        slack_admin_users=r.csv("SLACK_ADMIN_USERS"),
        slack_responders=r.slack_ids("SLACK_RESPONDERS", "UW", "user"),
        slack_responder_group=r.slack_id("SLACK_RESPONDER_GROUP", "S", "user group"),
        slack_personal_data=r.choice("SLACK_PERSONAL_DATA", "RESPONDERS", ("RESPONDERS", "ADMINS")).lower(),
        slack_alerts_per_minute=r.integer("SLACK_ALERTS_PER_MINUTE", 10, low=0, high=1000),
        slack_posts_per_minute=r.integer("SLACK_POSTS_PER_MINUTE", 50, low=0, high=60_000),
        twilio_account_sid=r.text("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=r.text("TWILIO_AUTH_TOKEN"),
        twilio_messaging_service_sid=r.text("TWILIO_MESSAGING_SERVICE_SID"),
        twilio_from_number=r.text("TWILIO_FROM_NUMBER"),
        twilio_api_url=r.url("TWILIO_API_URL", "https://api.twilio.com").rstrip("/"),
        smtp_host=r.text("SMTP_HOST"),
        smtp_port=r.integer("SMTP_PORT", 587, low=1, high=65535),
        smtp_username=r.text("SMTP_USERNAME"),
        smtp_password=r.text("SMTP_PASSWORD"),
        smtp_starttls=r.boolean("SMTP_STARTTLS", True),
        smtp_ssl=r.boolean("SMTP_SSL", False),
        email_from=r.text("EMAIL_FROM"),
        branding=_branding(r),
        api_keys=r.keys("NPS_API_KEYS"),
        api_docs=r.boolean("NPS_API_DOCS", False),
        metrics_token=r.key("NPS_METRICS_TOKEN"),
        secret_key=r.key("NPS_SECRET_KEY"),
        min_days_between_surveys=r.integer("NPS_MIN_DAYS_BETWEEN_SURVEYS", 90, low=0, high=3650),
        tick_seconds=r.integer("NPS_TICK_SECONDS", 15, low=1, high=3600),
        timezone=r.timezone("NPS_TIMEZONE", "UTC"),
        send_rate=r.integer("NPS_SEND_RATE", 10, low=1, high=10_000),
        send_concurrency=r.integer("NPS_SEND_CONCURRENCY", 16, low=1, high=512),
        db_pool_size=r.integer(
            "NPS_DB_POOL_SIZE", r.integer("NPS_SEND_CONCURRENCY", 16, low=1, high=512) + 8, low=1, high=1000
        ),
        db_max_overflow=r.integer("NPS_DB_MAX_OVERFLOW", 8, low=0, high=1000),
        escalate_unacknowledged_hours=r.integer("NPS_ESCALATE_UNACKNOWLEDGED_HOURS", 4, low=1, high=720),
        claim_timeout_seconds=r.integer("NPS_CLAIM_TIMEOUT_SECONDS", 300, low=90, high=86_400),
        quiet_hours_file=r.text("NPS_QUIET_HOURS_FILE"),
        quiet_hours=_quiet_hours(r.text("NPS_QUIET_HOURS_FILE")),
        benchmark=_benchmark(r.text("NPS_BENCHMARK")),
    )
    _check_combinations(settings)
    return settings


def _benchmark(value: str | None) -> Benchmark | None:
    """ "LABEL=SCORE", e.g. "B2B software=+41": a published NPS to show beside ours."""
    if value is None:
        return None
    label, equals, score = value.rpartition("=")
    if not equals or not label.strip() or not re.fullmatch(r"[+-]?\d{1,3}", score.strip()):
        raise SettingsError(f"NPS_BENCHMARK takes LABEL=SCORE, e.g. 'B2B software=+41', got {value!r}")
    number = int(score)
    if not -100 <= number <= 100:
        raise SettingsError(f"NPS_BENCHMARK's score must be between -100 and 100, got {number}")
    return Benchmark(label.strip()[:60], number)


def _quiet_hours(path: str | None) -> dict[str, QuietRule]:
    shipped = shipped_rules()
    if path is None:
        return shipped
    try:
        return parse_rules(Path(path).read_text(encoding="utf-8"), shipped)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise SettingsError(f"NPS_QUIET_HOURS_FILE ({path}): {detail}") from None


def _branding(r: _Reader) -> Branding:
    accent = (r.text("BRAND_ACCENT_COLOUR") or DEFAULT_ACCENT).lower()
    if problem := accent_problem(accent):
        raise SettingsError(f"BRAND_ACCENT_COLOUR {problem}")
    logo = r.text("BRAND_LOGO_URL")
    return Branding(
        company=r.text("BRAND_COMPANY_NAME"),
        logo_url=r.url("BRAND_LOGO_URL", "") if logo else None,
        accent=accent,
        sender_name=r.text("EMAIL_SENDER_NAME"),
    )


def _check_combinations(s: Settings) -> None:
    if s.slack_bot_token and not (s.slack_signing_secret or s.slack_app_token):
        raise SettingsError(
            "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN is not"
        )
    if bool(s.twilio_account_sid) != bool(s.twilio_auth_token):
        raise SettingsError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set together")
    if s.twilio_enabled and not (s.twilio_messaging_service_sid or s.twilio_from_number):
        raise SettingsError("Twilio needs TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER")
    if s.smtp_enabled and not s.email_from:
        raise SettingsError("SMTP_HOST is set but EMAIL_FROM is not")
    # Half a channel's configuration is a mistake, never a reason to fall back to the log transport unnoticed.
    twilio_rest = [
        name
        for name, value in (
            ("TWILIO_MESSAGING_SERVICE_SID", s.twilio_messaging_service_sid),
            ("TWILIO_FROM_NUMBER", s.twilio_from_number),
        )
        if value
    ]
    if twilio_rest and not s.twilio_enabled:
        raise SettingsError(
            f"{twilio_rest[0]} is set but TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not: set both, or unset "
            f"{twilio_rest[0]} to send SMS to the log transport"
        )
    smtp_rest = [
        name
        for name, value in (
            ("SMTP_USERNAME", s.smtp_username),
            ("SMTP_PASSWORD", s.smtp_password),
            ("EMAIL_FROM", s.email_from),
        )
        if value
    ]
    if smtp_rest and not s.smtp_enabled:
        raise SettingsError(
            f"{smtp_rest[0]} is set but SMTP_HOST is not: set SMTP_HOST, or unset {', '.join(smtp_rest)} to send "
            "email to the log transport"
        )
    if s.smtp_enabled and bool(s.smtp_username) != bool(s.smtp_password):
        given, missing = (
            ("SMTP_USERNAME", "SMTP_PASSWORD") if s.smtp_username else ("SMTP_PASSWORD", "SMTP_USERNAME")
        )
        raise SettingsError(f"{given} is set but {missing} is not: SMTP login needs both")
    if s.smtp_ssl and s.smtp_starttls and s.smtp_enabled:
        raise SettingsError(
            "SMTP_SSL and SMTP_STARTTLS exclude each other; set SMTP_STARTTLS=false with SMTP_SSL"
        )


def _refuse_placeholder(name: str, value: str) -> None:
    if value == _PLACEHOLDERS.get(name):
        raise SettingsError(
            f"{name} is still the placeholder of config.example.env; set a real value or remove it"
        )


def _check_strength(name: str, value: str) -> None:
    _refuse_placeholder(name, value)  # one of several keys may be the placeholder
    if len(value) < _MIN_KEY_LENGTH or len(set(value)) < _MIN_DISTINCT_CHARACTERS:
        raise SettingsError(
            f"{name} is too weak: use at least {_MIN_KEY_LENGTH} random characters, e.g. the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def _with_trailing_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


class _Reader:
    """Reads one variable at a time; every error names the variable and never echoes a secret."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        _refuse_placeholder(name, value)
        return value or None

    def csv(self, name: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in (self.text(name) or "").split(",") if part.strip())

    def slack_ids(self, name: str, prefixes: str, kind: str) -> tuple[str, ...]:
        """Comma-separated Slack ids: a name ("@ana", "#support") would never match anyone, so it is refused."""
        ids = self.csv(name)
        for value in ids:
            if not re.fullmatch(f"[{prefixes}][A-Z0-9]{{2,}}", value):
                raise SettingsError(
                    f"{name} takes Slack {kind} ids such as {prefixes[0]}0123ABCD, got {value!r}"
                )
        return ids

    def slack_id(self, name: str, prefixes: str, kind: str) -> str | None:
        """One Slack id, or None when unset."""
        value = self.text(name)
        if value is not None and (len(self.slack_ids(name, prefixes, kind)) != 1 or "," in value):
            raise SettingsError(f"{name} takes one Slack {kind} id, got {value!r}")
        return value

    def key(self, name: str) -> str | None:
        """A secret only we check (no provider does): at least 32 characters, and not a repeated few."""
        value = self.text(name)
        if value is not None:
            _check_strength(name, value)
        return value

    def keys(self, name: str) -> tuple[str, ...]:
        """Comma-separated secrets, each as :meth:`key` requires."""
        values = self.csv(name)
        for value in values:
            _check_strength(name, value)
        return values

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        # int() also takes "1_000" and digits of other scripts: a typo would pass as a number nobody meant.
        if not _WHOLE_NUMBER.fullmatch(raw.strip()):
            raise SettingsError(f"{name} must be a whole number, got {raw!r}")
        value = int(raw)
        if not low <= value <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        raw = (self.text(name) or default).upper()
        if raw not in options:
            raise SettingsError(f"{name} must be one of {', '.join(options)}, got {raw!r}")
        return raw

    def optional_choice(self, name: str, options: tuple[str, ...]) -> str | None:
        """One of `options` (case-insensitive), or None when unset."""
        return self.choice(name, "", ("", *options)) or None

    def url(self, name: str, default: str) -> str:
        raw = self.text(name) or default
        parts = urlsplit(raw)
        # A host of letters, digits and the signs of user:password@host:port or [IPv6] only, and no blank or
        # control character anywhere: an origin goes into a Content-Security-Policy (the logo's), where ";" or
        # "," would add a directive or a source.
        plain = _PLAIN_NETLOC.fullmatch(parts.netloc) and not _BLANK_OR_CONTROL.search(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname or not plain:
            raise SettingsError(f"{name} must be an http(s) URL such as https://example.com, got {raw!r}")
        return raw

    def database_url(self, name: str, default: str) -> str:
        raw = self.text(name) or default
        try:
            url = make_url(raw)
        except ArgumentError:
            # Not echoed: a database URL may carry a password.
            raise SettingsError(
                f"{name} is not a SQLAlchemy database URL (e.g. {DEFAULT_DATABASE_URL})"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise SettingsError(f"{name} must point at SQLite or PostgreSQL, got {url.get_backend_name()!r}")
        return raw

    def timezone(self, name: str, default: str) -> str:
        raw = self.text(name) or default
        try:
            ZoneInfo(raw)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"{name} must be an IANA time zone such as Europe/Berlin, got {raw!r}"
            ) from None
        return raw
