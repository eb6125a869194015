"""Deterministic pseudo-random choices keyed by ids: who is sampled, which day of an interval is theirs.

The same inputs give the same answer in every process and on every machine (Python's `hash()` is salted per
process), so a planner restarted mid-campaign makes the same choices it made before.
"""

from __future__ import annotations

import hashlib

# 53 bits: every such integer divided by 2**53 is an exact float, strictly below 1.
_FRACTION_BITS = 53


def _digest(parts: tuple[object, ...]) -> bytes:
    # Each part is length-prefixed so that ("ab", "c") and ("a", "bc") hash differently.
    encoded = "".join(f"{len(text)}:{text}" for text in map(str, parts))
    return hashlib.sha256(encoded.encode("utf-8")).digest()


def stable_fraction(*parts: object) -> float:
    """A number in [0, 1), uniform over inputs, from the SHA-256 of the parts' `str()` forms.

    Parts are compared by text, so the id 42 and the id "42" give the same fraction.
    """
    value = int.from_bytes(_digest(parts)[:8], "big") >> (64 - _FRACTION_BITS)
    return value / 2**_FRACTION_BITS


def is_sampled(rate: float, *parts: object) -> bool:
    """Whether these ids fall in a sample of `rate` (0 = nobody, 1 = everybody).

    Hashed under a "sample" label of its own, so being sampled says nothing about a contact's `phase_days`.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"a sampling rate is between 0 and 1, got {rate!r}")
    return stable_fraction("sample", *parts) < rate


def phase_days(interval_days: int, *parts: object) -> int:
    """A day in [0, interval_days): spreads contacts evenly over a relationship survey's interval.

    Exact integer arithmetic (no float rounding can produce `interval_days` itself), under a "phase" label so
    that the day is independent of `is_sampled`.
    """
    if isinstance(interval_days, bool) or not isinstance(interval_days, int) or interval_days < 1:
        raise ValueError(f"interval_days must be a whole number of days >= 1, got {interval_days!r}")
    value = int.from_bytes(_digest(("phase", *parts))[:8], "big")
    return (value * interval_days) >> 64
