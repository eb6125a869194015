"""Email over SMTP (STARTTLS or implicit TLS), one connection per message.

What the server's answers mean, by the step of the transaction they come at (RFC 5321):

- Connecting, TLS: a failure proves nothing was sent (TemporarySendError). AUTH refused (535, ...) is about
  our credentials, not the recipient: a ChannelSetupError; the dispatcher pauses email and keeps the invitations.
- MAIL FROM: a 5xx refuses our sender (EMAIL_FROM not allowed for this login, 530 authentication required):
  a ChannelSetupError too; a 4xx is temporary.
- RCPT TO: a 5xx is about the recipient (no such mailbox, 5.1.x): PermanentSendError, except a security or
  policy refusal (enhanced code 5.7.x: "relay access denied", "authentication required"), which is about our
  login or sender and would meet every address: a ChannelSetupError. A 4xx (greylisting) is temporary.
- An internationalised address needs SMTPUTF8 (RFC 6531); a server without it cannot reach that address.
- Until the message's content has been handed over, a lost connection proves nothing was sent: temporary.
- After the content, the reply to its final "." is the server's decision: 250 accepted; a 4xx or 5xx means it
  did not take the message and must not deliver it (RFC 5321 section 4.2.5), so trying again later is safe.
  Only a lost connection or a timeout while waiting for that reply is uncertain (UncertainSendError): the server
  may have taken it, and SMTP keeps no log we could ask.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import getaddresses, make_msgid
from io import BytesIO

from campaigns.channels.base import (
    ChannelSetupError,
    Outgoing,
    PermanentReason,
    PermanentSendError,
    SendError,
    TemporarySendError,
    UncertainSendError,
)
from storage.enums import Channel

# A line of the content starting with "." gets a second one, so that it cannot end the content early.
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str  # EMAIL_FROM, e.g. "Acme <nps@acme.example>"
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    ssl: bool = False
    timeout: float = 30.0


class SmtpEmail:
    channel = Channel.EMAIL
    name = "smtp"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def send(self, message: Outgoing) -> str:
        email = self._compose(message)
        try:
            smtp = self._connect()
        except smtplib.SMTPAuthenticationError as error:
            raise ChannelSetupError(
                f"SMTP login refused ({error.smtp_code})",
                str(error.smtp_code),
                "check SMTP_USERNAME and SMTP_PASSWORD",
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            raise TemporarySendError(f"SMTP server unreachable: {type(error).__name__}") from None
        with smtp:
            try:
                self._envelope(smtp, message.to)
            except (OSError, smtplib.SMTPServerDisconnected) as error:
                raise TemporarySendError(
                    f"SMTP connection lost before the message: {type(error).__name__}"
                ) from None
            self._transmit(smtp, email)
        return str(email["Message-ID"])

    def find_sent(
        self, to: str, body: str, since: datetime, until: datetime | None = None
    ) -> Sequence[str] | None:
        return None  # SMTP keeps no log we could ask

    def _envelope(self, smtp: smtplib.SMTP, to: str) -> None:
        """MAIL FROM and RCPT TO: nothing of the message has left yet, whatever happens here."""
        smtp.ehlo_or_helo_if_needed()
        sender = getaddresses([self.config.sender])[0][1] or self.config.sender
        options: list[str] = []
        if _international(sender, to):
            # RFC 6531: a non-ASCII address needs a server that says SMTPUTF8; one that does not cannot reach it.
            if not smtp.has_extn("smtputf8"):
                raise PermanentSendError(
                    "the SMTP server cannot send to an internationalised address (no SMTPUTF8)",
                    "SMTPUTF8",
                    PermanentReason.INVALID_ADDRESS,
                )
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        code, reply = smtp.mail(sender, options)
        if code != 250:
            raise _refused_sender(code, reply)
        code, reply = smtp.rcpt(to)
        if code not in (250, 251):
            if code >= 500 and _enhanced(reply).startswith("5.7."):
                # RFC 3463 class 7, security or policy, at RCPT TO: "relay access denied", "authentication
                # required". About us (our login, our sender), not the person: every address would get it.
                raise ChannelSetupError(
                    f"SMTP {code} at RCPT TO: {_text(reply)}",
                    str(code),
                    "the server will not relay for us: check SMTP_USERNAME, SMTP_PASSWORD and EMAIL_FROM",
                )
            raise _refused_at(code, reply, "RCPT TO", PermanentReason.INVALID_ADDRESS)

    def _transmit(self, smtp: smtplib.SMTP, email: EmailMessage) -> None:
        """DATA, the content, and the server's decision on it (see the module's docstring)."""
        try:
            code, reply = smtp.docmd("DATA")
        except (OSError, smtplib.SMTPServerDisconnected) as error:
            raise TemporarySendError(
                f"SMTP connection lost before the message: {type(error).__name__}"
            ) from None
        if code != 354:
            raise _refused_at(code, reply, "DATA", PermanentReason.REFUSED)
        try:
            smtp.send(_content(email, utf8=_international(str(email["From"]), str(email["To"]))))
            code, reply = smtp.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as error:
            raise UncertainSendError(f"SMTP connection lost while sending: {type(error).__name__}") from None
        if code != 250:
            raise _refused_at(code, reply, "the end of the message", PermanentReason.REFUSED)

    def _compose(self, message: Outgoing) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.config.sender
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Message-ID"] = make_msgid(domain=self.config.sender.rpartition("@")[2].strip(">") or None)
        for name, value in message.headers.items():
            email[name] = value
        email.set_content(message.body)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        return email

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        if config.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
        if config.username:
            smtp.login(config.username, config.password or "")
        return smtp


def _international(*addresses: str) -> bool:
    return not all(address.isascii() for address in addresses)


def _content(email: EmailMessage, *, utf8: bool = False) -> bytes:
    """The message as SMTP carries it: CRLF lines, leading dots doubled, ended by a line with a single dot."""
    buffer = BytesIO()
    BytesGenerator(buffer, policy=SMTP_POLICY.clone(utf8=True) if utf8 else SMTP_POLICY).flatten(email)
    data = _LEADING_DOT.sub(b"..", buffer.getvalue())
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _enhanced(reply: bytes | str) -> str:
    """The reply's enhanced status code (RFC 3463, e.g. "5.7.1"), or "" when it has none."""
    match = re.match(r"\s*([245]\.\d{1,3}\.\d{1,3})\b", _text(reply))
    return match.group(1) if match else ""


def _refused_sender(code: int, reply: bytes | str) -> SendError:
    text = f"SMTP {code} at MAIL FROM: {_text(reply)}"
    if 500 <= code < 600:
        return ChannelSetupError(text, str(code), "check EMAIL_FROM: the server does not let us send as it")
    return TemporarySendError(text, str(code))


def _refused_at(code: int, reply: bytes | str, step: str, reason: PermanentReason) -> SendError:
    text = f"SMTP {code} at {step}: {_text(reply)}"
    if 500 <= code < 600:
        return PermanentSendError(text, str(code), reason)
    return TemporarySendError(text, str(code))
