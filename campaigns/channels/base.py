"""What every channel adapter offers the dispatcher, and the three ways a send can end badly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from storage.enums import Channel


@dataclass(frozen=True)
class Outgoing:
    """One rendered message for one recipient."""

    channel: Channel
    to: str  # E.164 phone number or email address
    body: str  # the SMS text, or the plain-text part of an email
    subject: str | None = None
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # extra email headers (List-Unsubscribe, ...)


class SendError(Exception):
    """A send that did not go out; `code` is the provider's error code when it gave one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentSendError(SendError):
    """Retrying cannot help: invalid number, unsubscribed recipient, mailbox does not exist."""


class TemporarySendError(SendError):
    """Try again later (rate limited, provider down); `retry_after` is the provider's hint in seconds."""

    def __init__(self, message: str, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class UncertainSendError(SendError):
    """The request may or may not have been accepted (e.g. a timeout after sending it).

    Resending could text someone twice, so the invitation stays claimed and is reconciled later.
    """


class Transport(Protocol):
    channel: Channel
    name: str

    def send(self, message: Outgoing) -> str:
        """Send and return the provider's message id; raises a SendError subclass."""
        ...

    def find_sent(self, to: str, body: str, since: datetime) -> Sequence[str] | None:
        """Provider ids of messages to `to` with `body` accepted since `since`.

        None when the provider keeps no log we can ask: then an unfinished send cannot be reconciled.
        """
        ...
