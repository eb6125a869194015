"""The opt-out instruction of an SMS: does a text say how to stop, and the text with it added when it does not.

The first text to a number must tell its reader how to opt out (carrier rules; US law honours any reasonable
means, but the way has to be told). A campaign's own SMS may leave the instruction out: the first text to each
number then gets the locale's ``sms_opt_out`` on a line of its own; later texts to a number already told may
omit it.
"""

from __future__ import annotations

import re

__all__ = ["says_how_to_opt_out", "with_opt_out"]

# Carriers act on the English keyword in every language, so every shipped opt-out instruction names it. Not
# \b: Chinese writes it between ideographs ("回复STOP退订"), which are word characters too.
_STOP_WORD = re.compile(r"(?<![A-Za-z])STOP(?![A-Za-z])")


def says_how_to_opt_out(text: str, instruction: str) -> bool:
    """Whether an SMS tells its reader how to stop: the STOP keyword, or the locale's whole instruction."""
    return bool(_STOP_WORD.search(text)) or instruction in text


def with_opt_out(text: str, instruction: str) -> str:
    """``text``, with ``instruction`` on a line of its own unless it already says how to stop."""
    return text if says_how_to_opt_out(text, instruction) else f"{text}\n{instruction}"
