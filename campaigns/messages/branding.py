"""The sender's branding on the email and the survey page: company name, logo, accent colour, sender name.

The accent colour fills the chosen score and the main button, with white text on it, so it must keep WCAG AA
contrast against white (at least 4.5:1, WCAG 2.x relative luminance); `accent_problem` says why one does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_ACCENT = "#1a73e8"
AA_CONTRAST = 4.5
_HEX = re.compile(r"#[0-9a-f]{6}")


@dataclass(frozen=True)
class Branding:
    company: str | None = None  # the campaign's own `brand:` wins
    logo_url: str | None = None
    accent: str = DEFAULT_ACCENT
    sender_name: str | None = None


NO_BRANDING = Branding()


def contrast_with_white(colour: str) -> float:
    """WCAG 2.x contrast ratio between `colour` (#rrggbb) and white."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


def accent_problem(colour: str) -> str | None:
    """Why `colour` cannot be the accent (None when it can)."""
    if not _HEX.fullmatch(colour):
        return f"must be a colour written #rrggbb, got {colour!r}"
    ratio = contrast_with_white(colour)
    if ratio < AA_CONTRAST:
        return (
            f"{colour} has a contrast of {ratio:.2f}:1 with white text, below WCAG AA's {AA_CONTRAST}:1: "
            "choose a darker colour"
        )
    return None
