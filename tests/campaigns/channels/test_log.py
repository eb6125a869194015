"""The log transport, for trying the product: the whole message and its survey link, marked as not sent."""

from __future__ import annotations

import io

from campaigns.channels.base import Outgoing
from campaigns.channels.log import LogTransport
from storage.enums import Channel

BODY = (
    "Hi Ana, how likely are you to recommend Acme to a friend? Reply 0-10.\nhttps://nps.example.com/s/Tok3n_x"
)


def test_it_shows_the_whole_message_and_its_link_marked_not_sent(service_log: io.StringIO) -> None:
    provider_id = LogTransport(Channel.SMS).send(Outgoing(Channel.SMS, "+14155550123", BODY, message_id=7))
    assert provider_id.startswith("log-")
    output = service_log.getvalue()
    lines = output.splitlines()
    first = next(line for line in lines if "NOT SENT" in line)
    assert "NOT SENT (log transport): sms: to=+1••••••••23 message=7" in first
    assert "survey_link=https://nps.example.com/s/Tok3n_x" in first
    assert "    | Hi Ana, how likely are you to recommend Acme to a friend? Reply 0-10." in output
    assert "+14155550123" not in output


def test_an_email_shows_its_subject(service_log: io.StringIO) -> None:
    message = Outgoing(Channel.EMAIL, "ana.lima@example.com", BODY, subject="How did we do?")
    LogTransport(Channel.EMAIL).send(message)
    output = service_log.getvalue()
    assert "NOT SENT (log transport): email: to=a•••@example.com" in output
    assert "    | Subject: How did we do?" in output and "ana.lima@" not in output
