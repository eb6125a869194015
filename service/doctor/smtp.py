"""SMTP: connect, STARTTLS (or implicit TLS) and login, exactly as the email channel does, then quit."""

from __future__ import annotations

import smtplib
import ssl

from service.doctor.findings import TIMEOUT_SECONDS, Finding, fail, ok, warning
from service.settings import Settings

SUBJECT = "smtp"


def check_smtp(settings: Settings) -> list[Finding]:
    if not settings.smtp_enabled:
        return [warning(SUBJECT, "not configured (SMTP_HOST unset): emails go to the log, not sent")]
    assert settings.smtp_host
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        smtp = _connect(settings)
    except (OSError, smtplib.SMTPException) as error:
        return [fail(SUBJECT, f"cannot connect to {where}: {error or type(error).__name__}")]
    try:
        return _session(smtp, settings, where)
    except (OSError, smtplib.SMTPException) as error:
        return [fail(SUBJECT, f"{where} broke off the session: {error or type(error).__name__}")]
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _connect(settings: Settings) -> smtplib.SMTP:
    assert settings.smtp_host
    if settings.smtp_ssl:
        return smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=TIMEOUT_SECONDS,
            context=ssl.create_default_context(),
        )
    return smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS)


def _session(smtp: smtplib.SMTP, settings: Settings, where: str) -> list[Finding]:
    smtp.ehlo()
    findings = []
    if settings.smtp_starttls:
        if not smtp.has_extn("starttls"):
            return [
                fail(
                    SUBJECT,
                    f"{where} does not offer STARTTLS: use the server's submission port (587), SMTP_SSL=true "
                    "with SMTP_STARTTLS=false for port 465, or SMTP_STARTTLS=false for a trusted local relay",
                )
            ]
        try:
            smtp.starttls(context=ssl.create_default_context())
        except ssl.SSLError as error:
            return [fail(SUBJECT, f"STARTTLS with {where} failed: {error.reason or error}")]
        smtp.ehlo()
        findings.append(ok(SUBJECT, f"connected to {where}, STARTTLS done"))
    elif settings.smtp_ssl:
        findings.append(ok(SUBJECT, f"connected to {where} over TLS"))
    else:
        findings.append(warning(SUBJECT, f"connected to {where} without TLS (SMTP_STARTTLS=false)"))
    findings.append(_login(smtp, settings, where))
    return findings


def _login(smtp: smtplib.SMTP, settings: Settings, where: str) -> Finding:
    if not settings.smtp_username:
        return ok("smtp login", "none configured (SMTP_USERNAME unset): the server must accept mail without")
    try:
        smtp.login(settings.smtp_username, settings.smtp_password or "")
    except smtplib.SMTPAuthenticationError as error:
        reply = (
            error.smtp_error.decode(errors="replace")
            if isinstance(error.smtp_error, bytes)
            else error.smtp_error
        )
        return fail(
            "smtp login", f"{where} refused SMTP_USERNAME / SMTP_PASSWORD ({error.smtp_code} {reply})"
        )
    except smtplib.SMTPNotSupportedError:
        return fail("smtp login", f"{where} offers no login (AUTH) on this connection; check SMTP_STARTTLS")
    return ok("smtp login", f"logged in as {settings.smtp_username}")
