"""The SMTP adapter against the SMTP sink: each refusal means what its step of the transaction says."""

from __future__ import annotations

import pytest

from campaigns.channels.base import (
    ChannelSetupError,
    Outgoing,
    PermanentReason,
    PermanentSendError,
    TemporarySendError,
)
from campaigns.channels.email import SmtpConfig, SmtpEmail
from storage.enums import Channel
from tests.standins.fixtures import SMTP_PASSWORD, SMTP_USERNAME
from tests.standins.smtp import SmtpSink, Stage

TO = "ana@example.com"


def adapter(sink: SmtpSink, password: str | None = None) -> SmtpEmail:
    return SmtpEmail(
        SmtpConfig(
            host=sink.host,
            port=sink.port,
            sender="Acme <nps@acme.example>",
            username=SMTP_USERNAME if password else None,
            password=password,
            starttls=False,
        )
    )


def send(email: SmtpEmail) -> str:
    return email.send(Outgoing(Channel.EMAIL, TO, "How likely are you to recommend Acme?", subject="Acme"))


def test_an_accepted_message_arrives_once(smtp_sink: SmtpSink) -> None:
    send(adapter(smtp_sink))
    [email] = smtp_sink.wait_for(1)
    assert (email.mail_from, list(email.rcpt_tos)) == ("nps@acme.example", [TO])


def test_an_internationalised_address_is_sent_with_smtputf8(smtp_sink: SmtpSink) -> None:
    to = "zoë@exämple.de"
    adapter(smtp_sink).send(Outgoing(Channel.EMAIL, to, "Wie wahrscheinlich ist es...?", subject="Acme"))
    [email] = smtp_sink.wait_for(1)
    assert list(email.rcpt_tos) == [to] and email.message["To"] == to


def test_an_internationalised_address_a_server_cannot_take_is_permanent_for_that_address() -> None:
    with SmtpSink(smtputf8=False) as old_server:
        with pytest.raises(PermanentSendError) as refused:
            adapter(old_server).send(Outgoing(Channel.EMAIL, "zoë@exämple.de", "Wie...?", subject="Acme"))
        assert refused.value.reason is PermanentReason.INVALID_ADDRESS
        assert old_server.messages() == []


def test_a_refused_login_is_a_setup_error_naming_the_settings(smtp_sink_auth: SmtpSink) -> None:
    with pytest.raises(ChannelSetupError) as raised:
        send(adapter(smtp_sink_auth, password="wrong"))
    assert "SMTP_PASSWORD" in raised.value.fix
    send(adapter(smtp_sink_auth, password=SMTP_PASSWORD))
    assert len(smtp_sink_auth.wait_for(1)) == 1


def test_a_sender_refused_at_mail_from_is_a_setup_error(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(550, stage="mail")
    with pytest.raises(ChannelSetupError) as raised:
        send(adapter(smtp_sink))
    assert "EMAIL_FROM" in raised.value.fix


def test_a_busy_server_at_mail_from_is_temporary(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(451, stage="mail")
    with pytest.raises(TemporarySendError):
        send(adapter(smtp_sink))


def test_a_mailbox_refused_at_rcpt_to_is_permanent_for_that_address(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_recipient(TO, 550)
    with pytest.raises(PermanentSendError) as raised:
        send(adapter(smtp_sink))
    assert raised.value.reason is PermanentReason.INVALID_ADDRESS


@pytest.mark.parametrize(("code", "error"), [(451, TemporarySendError), (552, PermanentSendError)])
def test_a_refusal_after_the_content_means_the_server_did_not_take_it(
    smtp_sink: SmtpSink, code: int, error: type[Exception]
) -> None:
    smtp_sink.reject_next(code, stage="data")
    with pytest.raises(error):
        send(adapter(smtp_sink))
    assert smtp_sink.messages() == []
    send(adapter(smtp_sink))  # tried again: delivered once
    assert len(smtp_sink.wait_for(1)) == 1


def test_a_relay_refusal_at_rcpt_to_is_a_setup_error_not_the_persons(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(554, "rcpt", "5.7.1 Relay access denied")
    with pytest.raises(ChannelSetupError) as refused:
        send(adapter(smtp_sink))
    assert "SMTP_USERNAME" in refused.value.fix


@pytest.mark.parametrize(
    "reply",
    [
        # Exim does not advertise ENHANCEDSTATUSCODES by default: its relay refusal carries no X.Y.Z.
        "relay not permitted",
        "Relaying denied. Proper authentication required.",
        # Postfix checks the sender at RCPT TO (smtpd_delay_reject=yes, its default): our EMAIL_FROM refused.
        "5.1.0 <nps@acme.example>: Sender address rejected: User unknown in virtual mailbox table",
        "5.1.7 <nps@acme.example>: Sender address rejected: Bad sender address syntax",
        "5.1.8 <nps@acme.example>: Sender address rejected: Domain not found",
    ],
)
def test_a_refusal_at_rcpt_to_about_our_relay_or_sender_pauses_email_instead_of_burning_the_address(
    smtp_sink: SmtpSink, reply: str
) -> None:
    """Every address would get this answer: marking each one undeliverable would burn the whole outbox."""
    smtp_sink.reject_next(550, "rcpt", reply)
    with pytest.raises(ChannelSetupError) as refused:
        send(adapter(smtp_sink))
    assert "EMAIL_FROM" in refused.value.fix


@pytest.mark.parametrize(
    "reply",
    [
        # Microsoft 365: the recipient is a group that takes mail only from authenticated (internal) senders.
        "5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required",
        # Microsoft 365: the recipient's mailbox takes mail only from a list of senders.
        "5.7.129 RESOLVER.RST.RestrictedToRecipientsPermission; not authorized to send to the recipient",
        # Postfix check_recipient_access: this one recipient refuses outside mail.
        "5.7.1 <ana@example.com>: Recipient address rejected: Access denied",
    ],
)
def test_a_refusal_by_one_recipients_own_policy_is_permanent_for_that_address_and_pauses_nothing(
    smtp_sink: SmtpSink, reply: str
) -> None:
    smtp_sink.reject_next(550, "rcpt", reply)
    with pytest.raises(PermanentSendError) as refused:
        send(adapter(smtp_sink))
    assert refused.value.reason is PermanentReason.UNREACHABLE


def test_an_unknown_mailbox_at_rcpt_to_stays_permanent_for_that_address(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(550, "rcpt", "5.1.1 User unknown")
    with pytest.raises(PermanentSendError) as refused:
        send(adapter(smtp_sink))
    assert refused.value.reason is PermanentReason.INVALID_ADDRESS


# What real servers say at the end of the content (or at DATA) about our own sender, not the recipient.
SES_UNVERIFIED = (
    "Message rejected: Email address is not verified. The following identities failed the check in region "
    "EU-WEST-1: nps@acme.example"
)
SENDER_REFUSALS = [
    (554, SES_UNVERIFIED),  # Amazon SES: EMAIL_FROM (or, in its sandbox, the recipient) is not verified
    (554, "Sending paused for this account. For more information, please check the inbox of the email"),
    (550, "5.7.1 Sender is not authorised to send on behalf of acme.example"),
    (550, "5.7.26 Unauthenticated email from acme.example is not accepted due to domain's DMARC policy"),
    (550, "5.7.23 SPF validation failed"),
    (553, "5.1.8 Bad sender's system address"),
    (550, "SPF check failed: not authorized to send from this host"),  # no enhanced code at all
]


@pytest.mark.parametrize("stage", ["data", "mail"])
@pytest.mark.parametrize(("code", "reply"), SENDER_REFUSALS)
def test_a_refusal_about_our_sender_is_a_setup_error_wherever_it_comes(
    smtp_sink: SmtpSink, code: int, reply: str, stage: Stage
) -> None:
    smtp_sink.reject_next(code, stage=stage, text=reply)
    with pytest.raises(ChannelSetupError) as refused:
        send(adapter(smtp_sink))
    assert refused.value.code == str(code)
    assert "EMAIL_FROM" in refused.value.fix
    assert smtp_sink.messages() == []


@pytest.mark.parametrize(
    ("stage", "code", "reply", "reason"),
    [
        ("data", 550, "5.1.1 Mailbox unavailable", PermanentReason.INVALID_ADDRESS),
        ("data", 550, "5.2.1 Mailbox disabled, not accepting messages", PermanentReason.INVALID_ADDRESS),
        ("data", 552, "5.3.4 Message size exceeds fixed limit", PermanentReason.REFUSED),
        ("data", 554, "5.7.1 Message content rejected", PermanentReason.REFUSED),
        ("rcpt", 550, "Requested action not taken: mailbox unavailable", PermanentReason.INVALID_ADDRESS),
    ],
)
def test_a_refusal_of_the_recipient_or_of_this_message_stays_permanent_for_it(
    smtp_sink: SmtpSink, stage: Stage, code: int, reply: str, reason: PermanentReason
) -> None:
    smtp_sink.reject_next(code, stage=stage, text=reply)
    with pytest.raises(PermanentSendError) as refused:
        send(adapter(smtp_sink))
    assert refused.value.reason is reason


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_full_mailbox_is_tried_again_later(smtp_sink: SmtpSink, stage: Stage) -> None:
    smtp_sink.reject_next(552, stage=stage, text="5.2.2 Mailbox full, try again later")
    with pytest.raises(TemporarySendError):
        send(adapter(smtp_sink))


def raw_parsed(sink: SmtpSink) -> list[tuple[str, str]]:
    """Each received message's raw bytes, parsed by Python's email parser: (Date, Subject as a reader sees it)."""
    from email import message_from_bytes, policy
    from email.header import decode_header, make_header

    parsed = []
    for received in sink.wait_for(1):
        modern = message_from_bytes(received.raw, policy=policy.default)
        legacy = message_from_bytes(received.raw)  # compat32: how older mail readers decode encoded-words
        assert str(make_header(decode_header(legacy["Subject"]))) == str(modern["Subject"])
        parsed.append((str(modern["Date"] or ""), str(modern["Subject"])))
    return parsed


@pytest.mark.parametrize(
    "subject",
    [
        "Nhắc lại: bạn có sẵn sàng giới thiệu Công ty Cổ phần Thương mại Acme Việt Nam không?",
        "Erinnerung: Wie wahrscheinlich ist es, dass Sie die Müller-Lüdenscheidt GmbH weiterempfehlen?",
        "提醒：您有多大可能向朋友推荐 Acme 公司？",
    ],
)
def test_every_email_has_a_date_a_message_id_and_a_subject_that_keeps_its_spaces(
    smtp_sink: SmtpSink, subject: str
) -> None:
    from email.utils import parsedate_to_datetime

    adapter(smtp_sink).send(Outgoing(Channel.EMAIL, TO, "body", subject=subject))
    [(date, received_subject)] = raw_parsed(smtp_sink)
    assert parsedate_to_datetime(date).tzinfo is not None
    assert received_subject == subject
    [email] = smtp_sink.messages()
    assert email.message["Message-ID"].endswith("@acme.example>")


def test_the_sender_name_is_the_display_name_of_email_from(smtp_sink: SmtpSink) -> None:
    from campaigns.channels.email import sender_address

    config = SmtpConfig(
        host=smtp_sink.host,
        port=smtp_sink.port,
        sender=sender_address("Acme <nps@acme.example>", "Acme Customer Care"),
        starttls=False,
    )
    SmtpEmail(config).send(Outgoing(Channel.EMAIL, TO, "body", subject="Acme"))
    [email] = smtp_sink.wait_for(1)
    assert str(email.message["From"]) == "Acme Customer Care <nps@acme.example>"
    assert sender_address("nps@acme.example", None) == "nps@acme.example"


@pytest.mark.parametrize(
    "subject",
    [
        "Would you recommend Acme, Ann\r\nBcc: evil@attacker.example",
        "Acme, Ännchen\nBcc: evil@attacker.example",
    ],
)
def test_a_line_break_in_a_subject_is_a_space_not_a_crash_or_a_header(
    smtp_sink: SmtpSink, subject: str
) -> None:
    # A first name imported from a multi-line CSV cell, rendered into a campaign's own subject.
    adapter(smtp_sink).send(Outgoing(Channel.EMAIL, TO, "body", subject=subject))
    [(_, received_subject)] = raw_parsed(smtp_sink)
    assert received_subject == " ".join(subject.split())
    [email] = smtp_sink.messages()
    assert email.message["Bcc"] is None and list(email.rcpt_tos) == [TO]
