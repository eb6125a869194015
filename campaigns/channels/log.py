"""The fallback transport when a channel is not configured: the message goes to the log, masked."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime

from campaigns.channels.base import Outgoing
from campaigns.privacy import mask_email, mask_phone
from storage.enums import Channel

log = logging.getLogger(__name__)


class LogTransport:
    name = "log"

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def send(self, message: Outgoing) -> str:
        to = mask_phone(message.to) if message.channel is Channel.SMS else mask_email(message.to)
        log.info("%s to %s (log transport, not sent): %d characters", message.channel, to, len(message.body))
        return f"log-{uuid.uuid4().hex}"

    def find_sent(
        self, to: str, body: str, since: datetime, until: datetime | None = None
    ) -> Sequence[str] | None:
        return None
