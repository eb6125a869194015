"""Masking of personal data: phone numbers and email addresses never reach a log line whole.

Every log line is masked, including text an unauthenticated client wrote, so masking takes time linear in the
text: no pattern tries a run of characters again from each of its positions, and every repetition inside a
match is bounded or gives nothing back (possessive). The log formatter also caps a line's length first.
"""

from __future__ import annotations

import re

_LOCAL = "A-Za-z0-9._%+-"
# The lookbehind lets a match start only where a run of local-part characters starts, so a long run without an
# @ is read once (not once per character); `*+` never gives characters back. Labels cannot contain the dot that
# ends them, and `{1,63}+` never shortens one, so the domain has one way to match and its cost is bounded.
_EMAIL = re.compile(
    rf"(?<![{_LOCAL}])([{_LOCAL}])[{_LOCAL}]*+@((?:[A-Za-z0-9-]{{1,63}}+\.){{1,16}}[A-Za-z]{{2,63}})"
)
# The same address percent-encoded in a URL (`ana.lima%40example.com`). `%` may not be read as a local-part
# character here, or the possessive run would swallow the `%40`; an encoded character (`%2B`) is one unit, which
# may not be `%40`. The lookbehinds let a match start only where such a run starts, so it is read once.
_URL_LOCAL = "A-Za-z0-9._+-"
_ENCODED_EMAIL = re.compile(
    rf"(?<![%{_URL_LOCAL}])(?<!%[0-9A-Fa-f])([{_URL_LOCAL}]|%(?!40)[0-9A-Fa-f]{{2}})"
    rf"(?:[{_URL_LOCAL}]|%(?!40)[0-9A-Fa-f]{{2}})*+%40((?:[A-Za-z0-9-]{{1,63}}+\.){{1,16}}[A-Za-z]{{2,63}})"
)
# International numbers (+ and 7-15 digits, optional separators) are what we store and send; in a URL's query
# string the + arrives as %2B. Bounded, so each + costs at most 29 characters of reading.
_PHONE = re.compile(r"(\+|%2[Bb])(\d(?:[\s.-]?\d){6,14})")
_SEPARATORS = re.compile(r"[\s.-]")


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
    """Mask every phone number and email address found in free text, in time linear in its length."""
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}•••@{m.group(2)}", text)
    if "%40" in text:
        text = _ENCODED_EMAIL.sub(lambda m: f"{m.group(1)}•••%40{m.group(2)}", text)
    if "+" in text or "%2" in text:
        text = _PHONE.sub(_masked_number, text)
    return text


def _masked_number(match: re.Match[str]) -> str:
    return match.group(1) + mask_phone(_SEPARATORS.sub("", match.group(2)))
