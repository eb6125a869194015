"""Email over SMTP (STARTTLS or implicit TLS), one connection per message."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from campaigns.channels.base import (
    Outgoing,
    PermanentSendError,
    SendError,
    TemporarySendError,
    UncertainSendError,
)
from storage.enums import Channel


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
        except (OSError, smtplib.SMTPException) as error:
            raise _connect_error(error) from None
        with smtp:
            try:
                smtp.send_message(email)
            except smtplib.SMTPRecipientsRefused as error:
                code, text = next(iter(error.recipients.values()))
                raise _by_code(code, text) from None
            except smtplib.SMTPResponseException as error:
                raise _by_code(error.smtp_code, error.smtp_error) from None
            except (OSError, smtplib.SMTPException) as error:
                raise UncertainSendError(
                    f"SMTP connection lost while sending: {type(error).__name__}"
                ) from None
        return str(email["Message-ID"])

    def find_sent(self, to: str, body: str, since: datetime) -> Sequence[str] | None:
        return None  # SMTP keeps no log we could ask

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


def _by_code(code: int, text: bytes | str) -> SendError:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else text
    reason = f"SMTP {code}: {detail}"
    if 500 <= code < 600:
        return PermanentSendError(reason, str(code))
    return TemporarySendError(reason, str(code))


def _connect_error(error: Exception) -> SendError:
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return TemporarySendError(
            f"SMTP login refused ({error.smtp_code}); check SMTP_USERNAME/SMTP_PASSWORD"
        )
    return TemporarySendError(f"SMTP server unreachable: {type(error).__name__}")
