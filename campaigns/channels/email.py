"""Email over SMTP (STARTTLS or implicit TLS), one connection per message.

What the server's answers mean, by the step of the transaction they come at (RFC 5321):

- Connecting, TLS: a failure proves nothing was sent (TemporarySendError). AUTH refused (535, ...) is about
  our credentials, not the recipient: a ChannelSetupError; the dispatcher pauses email and keeps the invitations.
- MAIL FROM: a 5xx refuses our sender (EMAIL_FROM not allowed for this login, 530 authentication required):
  a ChannelSetupError too; a 4xx is temporary.
- RCPT TO: a 5xx is about the recipient (no such mailbox, 5.1.x): PermanentSendError, except a refusal about
  relaying or our sender, which would meet every address: a ChannelSetupError. That is one about relaying
  ("Relay access denied", Exim's "relay not permitted" with no enhanced code, "Relaying denied"), one asking us
  to authenticate ("authentication required"), one about our sender (Postfix checks the sender at RCPT TO by
  default, smtpd_delay_reject=yes: "5.1.0 <...>: Sender address rejected", and 5.1.7, 5.1.8), and any other
  security or policy refusal (5.7.x) that does not name the recipient. A recipient's own policy is permanent
  for that address only and never pauses email: Microsoft 365's 5.7.129 (RESOLVER.RST.RestrictedTo
  RecipientsPermission: the mailbox takes mail only from listed senders) and 5.7.133 (RESOLVER.RST.
  SenderNotAuthenticatedForGroup: the group takes mail only from authenticated senders of its organisation,
  though its text says "authentication required"), and Postfix's check_recipient_access ("5.7.1 <...>:
  Recipient address rejected: Access denied"). A 4xx (greylisting) is temporary.
- DATA, and the reply to the content's final ".": a 4xx or 5xx means the server did not take the message and
  must not deliver it (RFC 5321 section 4.2.5), so nothing went out. A relay decides here about our *sender*
  too, having read the From header: Amazon SES answers "554 Message rejected: Email address is not verified.
  The following identities failed the check in region ...: <identities>" (EMAIL_FROM or its domain is not a
  verified identity; an account still in the SES sandbox must verify every recipient too) and "Sending
  paused for this account"; others refuse our domain's authentication (SPF, DKIM, DMARC) or say the sender is
  not authorised to send. Such a refusal would meet every recipient: a ChannelSetupError, the channel pauses
  and the invitations stay planned. Only a refusal of the recipient (5.1.1-5.1.4, 5.1.6, 5.1.10 its address, 5.2.1
  its mailbox disabled) is permanent for that address; anything else refused for good is about this message
  (size 5.3.4, content 5.6.x, a policy 5.7.x not about the sender): permanent for this message, the campaign's
  next channel is tried.
- A full mailbox (enhanced 5.2.2, at RCPT TO or after the content) is, by RFC 3463, a persistent transient
  failure that the recipient can clear: temporary, whatever the reply's first digit.
- How a refusal is read (`_refusal`): the enhanced status code first (RFC 3463 `class.subject.detail`; subject
  1 is an address, 2 a mailbox, 7 security or policy): X.1.7 and X.1.8 are our sender's address, X.7.8 and
  X.7.13 our login or account, X.7.20-X.7.26 (RFC 7372) our domain's DKIM, SPF, reverse DNS or DMARC, X.7.27
  (RFC 7505) our sender's domain takes no mail; at RCPT TO, Microsoft's X.7.129 and X.7.133 are the
  recipient's own policy (above). Without a code, or with a generic one (X.0.0, X.1.0, X.7.0, X.7.1), the text
  decides: "not verified", "sender", "not authorised to send", SPF, DKIM, DMARC, "sending paused"; at RCPT TO
  also "relay", "authentication required" (ours) and "Recipient address rejected" (theirs).
- An internationalised address needs SMTPUTF8 (RFC 6531); a server without it cannot reach that address.
- Until the message's content has been handed over, a lost connection proves nothing was sent: temporary.
  Only a lost connection or a timeout while waiting for the reply to the content is uncertain
  (UncertainSendError): the server may have taken it, and SMTP keeps no log we could ask.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
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
            raise _refusal(code, reply, "RCPT TO")

    def _transmit(self, smtp: smtplib.SMTP, email: EmailMessage) -> None:
        """DATA, the content, and the server's decision on it (see the module's docstring)."""
        try:
            code, reply = smtp.docmd("DATA")
        except (OSError, smtplib.SMTPServerDisconnected) as error:
            raise TemporarySendError(
                f"SMTP connection lost before the message: {type(error).__name__}"
            ) from None
        if code != 354:
            raise _refusal(code, reply, "DATA")
        try:
            smtp.send(_content(email, utf8=_international(str(email["From"]), str(email["To"]))))
            code, reply = smtp.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as error:
            raise UncertainSendError(f"SMTP connection lost while sending: {type(error).__name__}") from None
        if code != 250:
            raise _refusal(code, reply, "the end of the message")

    def _compose(self, message: Outgoing) -> EmailMessage:
        email = EmailMessage(policy=SMTP_POLICY)
        # A missing Date alone costs 2.7 points in SpamAssassin (MISSING_DATE); the time the message is composed.
        email["Date"] = format_datetime(datetime.now(UTC))
        email["From"] = self.config.sender
        email["To"] = message.to
        _set_subject(email, message.subject or "")
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


def sender_address(email_from: str, sender_name: str | None) -> str:
    """EMAIL_FROM with EMAIL_SENDER_NAME as its display name, when one is set (it replaces EMAIL_FROM's own)."""
    if not sender_name:
        return email_from
    return formataddr((sender_name, getaddresses([email_from])[0][1] or email_from))


def _set_subject(email: EmailMessage, subject: str) -> None:
    """The subject, non-ASCII text encoded as RFC 2047 words that each carry their own spaces.

    The modern header folder (email.policy) drops the space between two encoded-words when it folds a long
    non-ASCII subject (Vietnamese "giới thiệu" arrived as "giớithiệu"); `email.header.Header` splits the UTF-8
    text inside the encoded-words instead, so a reader's decoder gets every space back. Stored as folded: its
    lines are short enough that the generator leaves them as they are. A line break (a name imported from a
    multi-line cell) is a space: a header cannot hold one, and the message would fail before it left.
    """
    subject = " ".join(subject.split())
    if subject.isascii():
        email["Subject"] = subject
        return
    folded = Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
    email.set_raw("Subject", folded)


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


# Enhanced status details (RFC 3463, 7372, 7505, the IANA registry) that are about our sender, login or domain.
_ABOUT_US = frozenset({"1.7", "1.8", "7.8", "7.13", *(f"7.{n}" for n in range(20, 28))})
# Details that say nothing specific: the reply's text decides (X.1.0: "other address status", ours or theirs).
_GENERIC = frozenset({"0.0", "1.0", "7.0", "7.1"})
# Microsoft 365 at RCPT TO: this recipient takes mail only from listed senders (7.129) or, a group, only from
# authenticated senders of its organisation (7.133). About one mailbox, not us (see the module's docstring).
_RECIPIENT_POLICY = frozenset({"7.129", "7.133"})
# At RCPT TO, what makes a refusal about our relay or sender, and what makes it the recipient's own.
_RELAY_TEXT = re.compile(r"\brelay(ing)?\b|authenticat(e|ion) required|must authenticate", re.IGNORECASE)
_RECIPIENT_TEXT = re.compile(r"recipient address rejected", re.IGNORECASE)
# Details about the recipient's address or mailbox: permanent for that address.
_RECIPIENT = frozenset({"1.1", "1.2", "1.3", "1.4", "1.6", "1.10", "2.1"})
_MAILBOX_FULL = "2.2"
_SENDER_TEXT = re.compile(
    r"not verified|\bsender\b|not authori[sz]ed to send|\b(spf|dkim|dmarc)\b|sending (is )?(paused|suspended)",
    re.IGNORECASE,
)
_SENDER_FIX = (
    "the server will not send as EMAIL_FROM: verify that address or its domain with the provider (Amazon SES: "
    "in its region; an account in the SES sandbox must also verify each recipient or ask for production "
    "access) and check the domain's SPF, DKIM and DMARC records"
)

_RELAY_FIX = "the server will not relay for us: check SMTP_USERNAME, SMTP_PASSWORD and EMAIL_FROM"


def _refusal(code: int, reply: bytes | str, step: str) -> SendError:
    """A refusal at RCPT TO, DATA or after the content, by what it is about (see the module's docstring)."""
    text = f"SMTP {code} at {step}: {_text(reply)}"
    enhanced = _enhanced(reply)
    detail = enhanced.partition(".")[2]
    if detail == _MAILBOX_FULL:
        return TemporarySendError(f"{text} (a full mailbox: tried again later)", str(code))
    if not 500 <= code < 600:
        return TemporarySendError(text, str(code))
    if step == "RCPT TO" and detail in _RECIPIENT_POLICY:
        return PermanentSendError(text, str(code), PermanentReason.UNREACHABLE)
    about_us = detail in _ABOUT_US or (
        (not detail or detail in _GENERIC) and _SENDER_TEXT.search(_text(reply)) is not None
    )
    if about_us:
        return ChannelSetupError(text, str(code), _SENDER_FIX)
    if step == "RCPT TO":
        if _RELAY_TEXT.search(_text(reply)):
            return ChannelSetupError(text, str(code), _RELAY_FIX)
        if _RECIPIENT_TEXT.search(_text(reply)):
            reason = (
                PermanentReason.UNREACHABLE if detail.startswith("7.") else PermanentReason.INVALID_ADDRESS
            )
            return PermanentSendError(text, str(code), reason)
        if detail.startswith("7."):
            # Any other security or policy refusal that does not name the recipient: about our login or sender,
            # not the person; every address would get it.
            return ChannelSetupError(text, str(code), _RELAY_FIX)
        return PermanentSendError(text, str(code), PermanentReason.INVALID_ADDRESS)
    if detail in _RECIPIENT:
        return PermanentSendError(text, str(code), PermanentReason.INVALID_ADDRESS)
    return PermanentSendError(text, str(code), PermanentReason.REFUSED)
