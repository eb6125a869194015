"""Slack: the bot token works (auth.test), has every scope the manifest asks for, is in each configured channel,
and the request URL the app's settings must name."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.manifest import bot_scopes
from service.doctor.findings import TIMEOUT_SECONDS, Finding, fail, ok, warning
from service.settings import Settings

EVENTS_PATH = "/slack/events"
_TOKEN_ERRORS = {
    "invalid_auth": "not a valid token",
    "not_authed": "no token was sent",
    "token_revoked": "the token was revoked",
    "token_expired": "the token expired",
    "account_inactive": "the app or its workspace was deactivated",
}
_NEW_TOKEN = "copy the Bot User OAuth Token (xoxb-...) from the app's OAuth & Permissions page"


def configured_channels(settings: Settings) -> list[tuple[str, str]]:
    """(variable, channel id) of every channel the bot posts to."""
    channels = {
        "SLACK_ALERT_CHANNEL": settings.slack_alert_channel,
        "SLACK_KUDOS_CHANNEL": settings.slack_kudos_channel,
        "SLACK_DIGEST_CHANNEL": settings.slack_digest_channel,
        "SLACK_ADMIN_CHANNEL": settings.slack_admin_channel,
    }
    return [(name, value) for name, value in channels.items() if value]


def check_slack(settings: Settings) -> list[Finding]:
    if not settings.slack_enabled:
        return [warning("slack", "not configured (SLACK_BOT_TOKEN unset): no alerts, no /nps")]
    client = WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=int(TIMEOUT_SECONDS),
        retry_handlers=[],  # a rate-limited answer is a finding too, not a reason to wait
    )
    try:
        answer = client.auth_test()
    except SlackApiError as error:
        code = str(error.response.get("error", "unknown"))
        meaning = _TOKEN_ERRORS.get(code, "refused")
        return [fail("slack token", f"SLACK_BOT_TOKEN refused by Slack ({code}: {meaning}): {_NEW_TOKEN}")]
    except (SlackClientError, OSError) as error:
        return [fail("slack token", f"cannot reach Slack at {settings.slack_api_url}: {error}")]
    if not answer.get("bot_id"):
        return [
            fail(
                "slack token", f"SLACK_BOT_TOKEN is not a bot token (user {answer.get('user')}): {_NEW_TOKEN}"
            )
        ]
    findings = [ok("slack token", f"valid: bot @{answer.get('user')} in workspace {answer.get('team')}")]
    findings.append(_check_scopes(answer.headers.get("x-oauth-scopes")))
    findings += [_check_channel(client, name, channel) for name, channel in configured_channels(settings)]
    findings.append(_check_request_url(settings))
    return findings


def _check_scopes(header: str | None) -> Finding:
    if header is None:
        return warning(
            "slack scopes", "Slack did not list the token's scopes; compare them with bot/manifest.yml"
        )
    granted = {scope.strip() for scope in header.split(",") if scope.strip()}
    missing = [scope for scope in bot_scopes() if scope not in granted]
    if missing:
        return fail(
            "slack scopes",
            f"not granted: {', '.join(missing)}: add them under OAuth & Permissions (bot/manifest.yml lists "
            "them all), then reinstall the app to the workspace",
        )
    return ok("slack scopes", f"all {len(bot_scopes())} scopes of bot/manifest.yml granted")


def _check_channel(client: WebClient, name: str, channel: str) -> Finding:
    subject = f"slack {name}"
    try:
        info = client.conversations_info(channel=channel)["channel"]
    except SlackApiError as error:
        code = str(error.response.get("error", "unknown"))
        if code == "channel_not_found":
            return fail(
                subject,
                f"{channel}: no channel the bot can see (a private channel: invite the bot there first; "
                "a name: use the channel id, C..., from the channel's details)",
            )
        return fail(subject, f"{channel}: Slack answered {code}")
    except (SlackClientError, OSError) as error:
        return fail(subject, f"{channel}: cannot ask Slack: {error}")
    shown = f"{channel} (#{info.get('name', '?')})"
    if info.get("is_archived"):
        return fail(subject, f"{shown} is archived: unarchive it or choose another channel")
    if not info.get("is_member"):
        return fail(subject, f"the bot is not a member of {shown}: type /invite @NPS in that channel")
    return ok(subject, f"the bot is a member of {shown}")


def _check_request_url(settings: Settings) -> Finding:
    if settings.slack_app_token:
        return ok("slack request URL", "Socket Mode (SLACK_APP_TOKEN): Slack needs no request URL")
    url = settings.public_base_url + EVENTS_PATH
    if not url.startswith("https://"):
        return fail("slack request URL", f"{url}: Slack calls only https request URLs; fix PUBLIC_BASE_URL")
    return ok(
        "slack request URL",
        f"{url}: the app's Event Subscriptions, Interactivity and /nps command must all name it",
    )
