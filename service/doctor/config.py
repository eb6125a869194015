"""The shape of PUBLIC_BASE_URL: pure checks over the settings, no network."""

from __future__ import annotations

from urllib.parse import urlsplit

from service.doctor.findings import Finding, fail, ok, warning
from service.settings import Settings

SUBJECT = "PUBLIC_BASE_URL"
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def reached_from_outside(settings: Settings) -> list[str]:
    """What needs the public URL to reach us: survey links in texts and emails, Twilio's and Slack's webhooks."""
    needs = []
    if settings.twilio_enabled:
        needs.append("Twilio")
    if settings.smtp_enabled:
        needs.append("email")
    if settings.slack_enabled and not settings.slack_app_token:
        needs.append("Slack (HTTP mode)")
    return needs


def check_public_base_url(settings: Settings) -> list[Finding]:
    """https, a bare origin (the service adds /s/..., /twilio/..., /slack/events itself), not local when real
    channels send links to customers or providers call us."""
    url = settings.public_base_url
    parts = urlsplit(url)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return [
            fail(
                SUBJECT,
                f"{url} has a path or query; use the bare address (e.g. https://nps.example.com): "
                "the service adds its own paths",
            )
        ]
    needs = reached_from_outside(settings)
    host = (parts.hostname or "").lower()
    if host in _LOCAL_HOSTS or host.endswith(".localhost"):
        if needs:
            return [
                fail(
                    SUBJECT,
                    f"{url} is this machine, but {', '.join(needs)} must reach it: "
                    "set the https address customers and providers reach",
                )
            ]
        return [
            ok(SUBJECT, f"{url} (fine for trying locally; set the public https address before going live)")
        ]
    if parts.scheme != "https":
        if needs:
            return [
                fail(
                    SUBJECT, f"{url} is not https: survey links and webhooks need https (Slack refuses http)"
                )
            ]
        return [warning(SUBJECT, f"{url} is not https; use https before real channels are configured")]
    return [ok(SUBJECT, url)]
