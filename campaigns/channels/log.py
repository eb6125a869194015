"""The log transport, for trying the product: a channel that is not configured writes its messages to the log.

Nothing is sent, and each line says so first ("NOT SENT (log transport)"); the whole message follows, with its
survey link on a line of its own, so that a newcomer can open the survey without reading the database. The
address is masked like every address in the log. It is only used for a channel with no configuration at all:
half a configuration stops startup (service.settings).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from campaigns.channels.base import Outgoing
from campaigns.events import Event, emit
from storage.enums import Channel

log = logging.getLogger(__name__)

_SURVEY_LINK = re.compile(r"https?://\S+?/s/[A-Za-z0-9_-]+")


def survey_link(body: str) -> str | None:
    """The first survey page link in a message (the link without a score, or the first score link)."""
    match = _SURVEY_LINK.search(body)
    return match.group(0) if match else None


class LogTransport:
    name = "log"

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def send(self, message: Outgoing) -> str:
        link = survey_link(message.body)
        text = "\n".join(f"    | {line}" for line in message.body.splitlines())
        if message.subject:
            text = f"    | Subject: {message.subject}\n{text}"
        # The message itself follows on lines of its own, as the recipient would read it.
        words = f"NOT SENT (log transport): {message.channel}"
        fields: dict[str, Any] = {"to": message.to, "message": message.message_id, "survey_link": link}
        emit(log, Event.LOG_TRANSPORT, words=words, detail=text, **fields)
        return f"log-{uuid.uuid4().hex}"

    def find_sent(
        self, to: str, body: str, since: datetime, until: datetime | None = None
    ) -> Sequence[str] | None:
        return None
