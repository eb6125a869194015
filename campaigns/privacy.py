"""Masking of personal data: phone numbers and email addresses never reach a log line whole."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# International numbers (+ and 7-15 digits, optional separators) are what we store and send.
_PHONE = re.compile(r"\+\d(?:[\s.-]?\d){6,14}")


def mask_phone(phone: str | None) -> str:
    """'+14155550123' -> '+1•••••••23': enough to tell two numbers apart in a log, not enough to call."""
    if not phone:
        return "-"
    digits = phone.lstrip("+")
    return ("+" if phone.startswith("+") else "") + digits[:1] + "•" * max(len(digits) - 3, 0) + digits[-2:]


def mask_email(email: str | None) -> str:
    """'jane.doe@example.com' -> 'j•••@example.com'."""
    if not email or "@" not in email:
        return "-"
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}•••@{domain}"


def mask_text(text: str) -> str:
    """Mask every phone number and email address found in free text."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}•••@{m.group(2)}", text)
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"[\s.-]", "", m.group(0))), text)
