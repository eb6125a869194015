"""What every channel adapter offers the dispatcher, and the four ways a send can end badly.

An adapter translates its provider's answers into these errors and nothing above it reads a provider's codes:
a PermanentSendError says *why* in `reason` (the recipient opted out, the address is invalid, ...), so the
dispatcher can act on the meaning (record an opt-out) whatever the channel. Only a PermanentSendError is about
the recipient; a ChannelSetupError is about our own account or sender and says nothing about the person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
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
    # Our outbound message row, for a provider that can echo a key back (Twilio's StatusCallback URL carries
    # it), so that its answer finds the message even when the send's own answer was lost. None outside the outbox.
    message_id: int | None = None


class SendError(Exception):
    """A send that did not go out; `code` is the provider's error code when it gave one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentReason(StrEnum):
    """Why a send can never succeed for this address."""

    RECIPIENT_OPTED_OUT = (
        "the recipient opted out"  # the person told the provider to stop: record the opt-out
    )
    INVALID_ADDRESS = "the address is not valid"  # malformed, not a mobile number, mailbox does not exist
    UNREACHABLE = "the address cannot be reached"  # no route to it (carrier, region)
    REFUSED = "the provider refused it"  # any other refusal the adapter knows to be final


class PermanentSendError(SendError):
    """Retrying cannot help: invalid number, unsubscribed recipient, mailbox does not exist."""

    def __init__(
        self, message: str, code: str | None = None, reason: PermanentReason = PermanentReason.REFUSED
    ) -> None:
        super().__init__(message, code)
        self.reason = reason


class TemporarySendError(SendError):
    """Try again later (rate limited, provider down); `retry_after` is the provider's hint in seconds."""

    def __init__(self, message: str, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class ChannelSetupError(SendError):
    """The provider refused *us*, not the recipient: credentials, account or sender; nothing was sent.

    Every send on the channel would meet the same answer until an operator fixes the setup, so the dispatcher
    pauses the channel and keeps the invitations. `fix` tells the operator what to change.
    """

    def __init__(self, message: str, code: str | None = None, fix: str = "") -> None:
        super().__init__(message, code)
        self.fix = fix


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

    def find_sent(
        self, to: str, body: str, since: datetime, until: datetime | None = None
    ) -> Sequence[str] | None:
        """Provider ids of messages from us to `to` with `body`, accepted between `since` and `until`.

        The provider may have stored the body a little differently (the adapter knows how); None when the
        provider keeps no log we can ask: then an unfinished send cannot be reconciled.
        """
        ...
