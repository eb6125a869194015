"""All the checks, in the order an operator fixes things: settings, public URL, database, then each provider."""

from __future__ import annotations

from collections.abc import Callable

from service.doctor.config import check_public_base_url
from service.doctor.database import check_database
from service.doctor.findings import Finding
from service.doctor.slack import check_slack
from service.doctor.smtp import check_smtp
from service.doctor.twilio import check_twilio
from service.settings import Settings


def run_checks(settings: Settings) -> list[Finding]:
    checks: list[Callable[[], list[Finding]]] = [
        lambda: check_public_base_url(settings),
        lambda: check_database(settings.database_url),
        lambda: check_slack(settings),
        lambda: check_twilio(settings),
        lambda: check_smtp(settings),
    ]
    return [finding for check in checks for finding in check()]
