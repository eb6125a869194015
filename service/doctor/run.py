"""All the checks, in the order an operator fixes things: settings, public URL, database, then each provider."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from service.doctor.config import check_public_base_url
from service.doctor.database import check_database
from service.doctor.findings import CHECK_DEADLINE_SECONDS, Finding, fail
from service.doctor.slack import check_slack
from service.doctor.smtp import check_smtp
from service.doctor.twilio import check_twilio
from service.settings import Settings

Check = Callable[[], list[Finding]]


def run_checks(settings: Settings) -> list[Finding]:
    """The network checks run side by side, each in its own thread, against one deadline: the doctor finishes
    within CHECK_DEADLINE_SECONDS however slowly a server trickles, and prints the findings in this order."""
    network: list[tuple[str, Check]] = [
        ("database", lambda: check_database(settings.database_url)),
        ("slack", lambda: check_slack(settings)),
        ("twilio", lambda: check_twilio(settings)),
        ("smtp", lambda: check_smtp(settings)),
    ]
    started = [_Started(subject, check) for subject, check in network]
    deadline = time.monotonic() + CHECK_DEADLINE_SECONDS
    return check_public_base_url(settings) + [
        finding for check in started for finding in check.findings(deadline)
    ]


class _Started:
    """One check running in a daemon thread: one left hanging past the deadline does not keep the CLI alive."""

    def __init__(self, subject: str, check: Check) -> None:
        self.subject = subject
        self._check = check
        self._result: list[Finding] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"doctor-{subject}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._check()
        except BaseException as error:  # handed to the caller's thread, raised there as if called inline
            self._error = error

    def findings(self, deadline: float) -> list[Finding]:
        self._thread.join(max(deadline - time.monotonic(), 0))
        if self._thread.is_alive():
            return [
                fail(
                    self.subject,
                    f"did not finish within {CHECK_DEADLINE_SECONDS:g} s: the server answers, but too slowly "
                    "(a byte at a time, or a reply that never ends); check the host and port, or a proxy between",
                )
            ]
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result
