"""SMS segments (GSM 03.38 / 3GPP TS 23.038 and 23.040): how many parts a text is billed and sent as.

A text is sent in GSM-7 when every character is in the GSM 03.38 default alphabet or its extension table, else
in UCS-2. One segment holds 160 septets (GSM-7) or 70 UTF-16 code units (UCS-2); a longer text is concatenated,
and the user data header of each part leaves 153 septets or 67 code units. An extension character ("€", "{")
is an escape plus a septet, two septets that never straddle two parts; an astral character (an emoji) is a
surrogate pair, two code units kept together too. Pure: no I/O, no configuration (national language shift
tables are not used: Twilio and most carriers do not send them).
"""

from __future__ import annotations

__all__ = ["GSM7", "UCS2", "sms_segments"]

GSM7, UCS2 = "GSM-7", "UCS-2"

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + one septet = two each).
# ESC itself (0x1B) is left out: a literal escape character in a text cannot be sent as GSM-7.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

_GSM_SINGLE, _GSM_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67


def sms_segments(text: str) -> tuple[int, str]:
    """How many SMS segments ``text`` takes and in which encoding: (count, "GSM-7" | "UCS-2").

    GSM-7 when every character is in the GSM 03.38 alphabet (extension characters such as "€" or "{" take
    two septets): 160 septets fit one segment, 153 each when concatenated. Otherwise UCS-2, counted in UTF-16
    code units (an emoji takes two): 70 in one segment, 67 each when concatenated. A concatenated message
    never splits an escape sequence or a surrogate pair across segments, which is why the count is done by
    filling segments rather than by dividing. An empty text takes 0 segments.
    """
    if all(char in _GSM_BASIC or char in _GSM_EXTENSION for char in text):
        units = [2 if char in _GSM_EXTENSION else 1 for char in text]
        return _count_segments(units, _GSM_SINGLE, _GSM_PART), GSM7
    units = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return _count_segments(units, _UCS2_SINGLE, _UCS2_PART), UCS2


def _count_segments(units: list[int], single: int, part: int) -> int:
    """Segments needed for characters of the given widths, without splitting a character."""
    total = sum(units)
    if total <= single:
        return 1 if total else 0
    segments, used = 1, 0
    for width in units:
        if used + width > part:
            segments, used = segments + 1, 0
        used += width
    return segments
