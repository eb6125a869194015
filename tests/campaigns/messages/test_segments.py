from __future__ import annotations

import pytest

from campaigns.messages.segments import sms_segments

# Known vectors: the limits of 3GPP TS 23.040 (160/153 septets, 70/67 UCS-2 code units), the GSM 03.38 tables
# of TS 23.038 (every basic character one septet, every extension character two), and Twilio's segment
# calculator (twilio.com/docs/glossary/what-sms-character-limit) for the texts at the borders.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (0, "GSM-7")),
        ("a", (1, "GSM-7")),
        ("a" * 160, (1, "GSM-7")),
        ("a" * 161, (2, "GSM-7")),
        ("a" * 306, (2, "GSM-7")),
        ("a" * 307, (3, "GSM-7")),
        ("Grüße aus Köln, ¿qué? à bientôt"[:27], (1, "GSM-7")),  # up to "bient": all in GSM 03.38
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r", (1, "GSM-7")),
        ("€" * 80, (1, "GSM-7")),  # 160 septets
        ("€" * 81, (2, "GSM-7")),  # 162 septets
        ("a" * 159 + "^", (2, "GSM-7")),  # 161 septets
        ("a" * 158 + "{", (1, "GSM-7")),
        ("^{}\\[~]|€\f" * 8, (1, "GSM-7")),  # 9 extension characters x 2 x 8 = 144 septets
        # An escape sequence is never split: the "€" moves whole into the second segment, which overflows.
        ("a" * 152 + "€" + "a" * 152, (3, "GSM-7")),
        ("ç" * 70, (1, "UCS-2")),  # lower-case c cedilla is not in GSM 03.38 (only "Ç" is)
        ("ç" * 71, (2, "UCS-2")),
        ("ç" * 134, (2, "UCS-2")),
        ("ç" * 135, (3, "UCS-2")),
        ("a" * 69 + "á", (1, "UCS-2")),
        ("a" * 70 + "ê", (2, "UCS-2")),
        ("😀" * 35, (1, "UCS-2")),  # 70 UTF-16 code units
        ("😀" * 36, (2, "UCS-2")),
        ("a" * 69 + "😀", (2, "UCS-2")),
        # A surrogate pair is never split across segments either.
        ("ç" * 66 + "😀" + "ç" * 66, (3, "UCS-2")),
        ("Привет", (1, "UCS-2")),
        ("\x1b", (1, "UCS-2")),
        # The whole basic table but ESC is 127 septets; the extension table, 10 characters x 2.
        (
            "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
            "abcdefghijklmnopqrstuvwxyzäöñüà",
            (1, "GSM-7"),
        ),
        ("^{}\\[~]|€\f" * 16, (3, "GSM-7")),  # 320 septets: 76 pairs (152) a part, never 153
        (
            "Chào bạn",
            (1, "UCS-2"),
        ),  # "ạ" (Vietnamese tone marks) is outside GSM 03.38: the whole text is UCS-2
        ("Chao ban, tra loi 0-10", (1, "GSM-7")),
        ("a" * 153 * 2 + "a" * 153, (3, "GSM-7")),
        ("a" * 153 * 3 + "a", (4, "GSM-7")),
        ("ç" * 67 * 3, (3, "UCS-2")),
        ("ç" * 67 * 3 + "ç", (4, "UCS-2")),
        ("’", (1, "UCS-2")),  # a curly apostrophe is not the GSM "'"
    ],
)
def test_sms_segments(text: str, expected: tuple[int, str]) -> None:
    assert sms_segments(text) == expected
