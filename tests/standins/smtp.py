"""A real SMTP server for tests (aiosmtpd on 127.0.0.1): records what the app sends, refuses on demand.

Point the app at it with SMTP_HOST=127.0.0.1, SMTP_PORT=sink.port, SMTP_STARTTLS=false (the sink speaks
plain SMTP only) and, for `SmtpSink(username=..., password=...)`, SMTP_USERNAME/SMTP_PASSWORD.

Why aiosmtpd's `Controller` and not a fake `smtplib`: the app's own SMTP client code (EHLO, AUTH, MAIL/RCPT/DATA,
how it reacts to 4xx/5xx replies) runs for real. The Controller serves from its own event-loop thread, so hooks
below record under a `threading.Condition` that test threads wait on.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import weakref
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"

# aiosmtpd logs every session at INFO from its own event-loop thread ("Connection lost during
# _handle_client()"), which can land in whatever test is capturing logs at that moment; its warnings still show.
logging.getLogger("mail.log").setLevel(logging.WARNING)
Stage = Literal["mail", "rcpt", "data"]
"""Where a refusal happens: MAIL FROM (smtplib.SMTPSenderRefused), RCPT TO (SMTPRecipientsRefused when every
recipient is refused) or after DATA (SMTPDataError)."""

REPLY_TEXT = {
    421: "4.3.2 Service not available, closing transmission channel",
    450: "4.2.1 Mailbox temporarily unavailable",
    451: "4.3.0 Temporary local problem, try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.1.1 Mailbox unavailable",
    552: "5.3.4 Message size exceeds fixed limit",
    553: "5.1.3 Mailbox name not allowed",
    554: "5.7.1 Transaction failed",
}
"""Default text of the replies `reject_next` / `reject_recipient` send (any other code gets a generic one)."""


@dataclass(frozen=True)
class ReceivedEmail:
    """One accepted message: envelope, parsed message (`email.policy.default`), raw bytes, AUTH login."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    login: str | None

    @property
    def subject(self) -> str:
        """The decoded Subject header ("" when absent)."""
        return str(self.message.get("Subject", ""))

    def body(self, subtype: str = "plain") -> str | None:
        """The decoded text/`subtype` part ("plain" or "html"), or None when the message has none."""
        part = self.message.get_body(preferencelist=(subtype,))
        return None if part is None else str(part.get_content())


@dataclass(frozen=True)
class Refusal:
    """A refusal the sink sent: at which stage, with which code, for which address (sender or recipient)."""

    stage: Stage
    code: int
    address: str


@dataclass(frozen=True)
class _Fault:
    stage: Stage
    code: int
    text: str

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


class SmtpSink:
    """SMTP server on 127.0.0.1 (free port) recording messages; optional AUTH PLAIN/LOGIN without TLS.

    With credentials, MAIL FROM before a successful AUTH is refused with 530, like a submission server.
    """

    def __init__(
        self, username: str | None = None, password: str | None = None, *, smtputf8: bool = True
    ) -> None:
        self.username = username
        self.password = password
        self.smtputf8 = smtputf8
        self._cond = threading.Condition()
        self._controller: Controller | None = None
        self._init_state()

    def _init_state(self) -> None:
        self._received: list[ReceivedEmail] = []
        self._refusals: list[Refusal] = []
        self._pending: list[_Fault] = []
        self._bad_recipients: dict[str, _Fault] = {}
        # the fault claimed by a transaction at MAIL FROM, until its envelope is dropped (RSET, next MAIL)
        self._claimed: weakref.WeakKeyDictionary[Envelope, _Fault] = weakref.WeakKeyDictionary()

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        """Serve on a free port. aiosmtpd's readiness check cannot use port=0, so pick one first (retried)."""
        if self._controller is not None:
            return self
        for attempt in range(5):
            controller = Controller(
                _Handler(self),
                hostname=HOST,
                port=_free_port(),
                server_hostname="smtp-sink.test",  # skip socket.getfqdn(): a DNS lookup per connection
                authenticator=self._authenticate if self.username is not None else None,
                auth_require_tls=False,
                enable_SMTPUTF8=self.smtputf8,  # as mail servers do today: internationalised addresses (RFC 6531)
            )
            try:
                controller.start()
            except OSError:  # the port was taken between choosing and binding it
                if attempt == 4:
                    raise
                continue
            self._controller = controller
            break
        return self

    def stop(self) -> None:
        """Stop the server thread (idempotent)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        """The bound port (the sink must be started)."""
        if self._controller is None:
            raise RuntimeError("SmtpSink is not started")
        return int(self._controller.port)

    # test controls -------------------------------------------------------------------------------
    def reject_next(
        self, code: int = 550, stage: Stage = "rcpt", text: str | None = None, times: int = 1
    ) -> None:
        """Refuse the next `times` transactions with `code` at `stage`.

        At "rcpt" every recipient of the transaction gets the reply, so smtplib raises SMTPRecipientsRefused;
        at "data" the whole message is refused after its content (SMTPDataError); at "mail", SMTPSenderRefused.
        4xx codes are temporary (retry later), 5xx permanent.
        """
        fault = _Fault(stage, code, text or REPLY_TEXT.get(code, "Refused by the test SMTP sink"))
        with self._cond:
            self._pending.extend([fault] * times)

    def reject_recipient(self, address: str, code: int = 550, text: str | None = None) -> None:
        """Refuse RCPT TO `address` (case-insensitive) until reset(); other recipients still get the message."""
        fault = _Fault("rcpt", code, text or REPLY_TEXT.get(code, "Refused by the test SMTP sink"))
        with self._cond:
            self._bad_recipients[address.lower()] = fault

    def reset(self) -> None:
        """Forget messages, refusals and pending faults (credentials stay)."""
        with self._cond:
            self._init_state()

    # assertions ----------------------------------------------------------------------------------
    def messages(self) -> list[ReceivedEmail]:
        """Accepted messages, oldest first."""
        with self._cond:
            return list(self._received)

    def refusals(self) -> list[Refusal]:
        """Refusals sent so far (injected faults and refused recipients), oldest first."""
        with self._cond:
            return list(self._refusals)

    def wait_for(self, n: int = 1, timeout: float = 5) -> list[ReceivedEmail]:
        """Block until `n` messages were accepted; return all of them. Raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._received) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {n} email(s) within {timeout}s, got {len(self._received)}; "
                        f"refusals: {self._refusals}"
                    )
                self._cond.wait(remaining)
            return list(self._received)

    # called from the controller's event-loop thread -------------------------------------------
    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _on_mail(self, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        if self.username is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        with self._cond:
            fault = self._pending.pop(0) if self._pending else None
            if fault is not None and fault.stage == "mail":
                return self._refuse(fault, address)
            if fault is not None:
                self._claimed[envelope] = fault
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    def _on_rcpt(self, envelope: Envelope, address: str, options: list[str]) -> str:
        with self._cond:
            fault = self._claimed.get(envelope)
            if fault is None or fault.stage != "rcpt":
                fault = self._bad_recipients.get(address.lower())
            if fault is not None:
                return self._refuse(fault, address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    def _on_data(self, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        with self._cond:
            fault = self._claimed.pop(envelope, None)
            if fault is not None and fault.stage == "data":
                return self._refuse(fault, ", ".join(envelope.rcpt_tos))
            message = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
            auth = session.auth_data
            login = auth.login.decode() if isinstance(auth, LoginPassword) else None
            self._received.append(
                ReceivedEmail(str(envelope.mail_from), tuple(envelope.rcpt_tos), message, raw, login)
            )
            self._cond.notify_all()
        return "250 OK: queued"

    def _refuse(self, fault: _Fault, address: str) -> str:
        self._refusals.append(Refusal(fault.stage, fault.code, address))
        self._cond.notify_all()
        return fault.reply


class _Handler:
    """aiosmtpd's handler object: its handle_* hooks delegate to the sink.

    Separate from SmtpSink because aiosmtpd inspects every attribute of its handler (properties included,
    and `SmtpSink.port` raises until the server is up).
    """

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        return self.sink._on_mail(session, envelope, address, mail_options)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        return self.sink._on_rcpt(envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.sink._on_data(session, envelope)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


__all__ = ["REPLY_TEXT", "ReceivedEmail", "Refusal", "SmtpSink"]
