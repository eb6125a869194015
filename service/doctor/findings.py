"""What a check found: ok, a warning (works, but worth fixing), or a failure (does not work as configured)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

TIMEOUT_SECONDS = 5.0
"""Every network call gives up after this: a provider that does not answer is itself the finding."""

CHECK_DEADLINE_SECONDS = 3 * TIMEOUT_SECONDS
"""A whole network check (several calls) gives up after this. The timeout above is per read, and a server that
answers a byte at a time, or greets with endless `220-` lines, never lets one read time out."""


class Status(Enum):
    OK = "ok"
    WARNING = "warning"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    subject: str  # what was checked: "database", "slack scopes", "twilio sender"...
    status: Status
    text: str  # what was found, and for a warning or a failure what to do

    def line(self) -> str:
        return f"{self.status.value:<7}  {self.subject}: {self.text}"


def ok(subject: str, text: str) -> Finding:
    return Finding(subject, Status.OK, text)


def warning(subject: str, text: str) -> Finding:
    return Finding(subject, Status.WARNING, text)


def fail(subject: str, text: str) -> Finding:
    return Finding(subject, Status.FAIL, text)


def failed(findings: list[Finding]) -> bool:
    return any(f.status is Status.FAIL for f in findings)
