"""Reading a campaign file and reporting its problems: every problem at once, each with the path of its field.

A path reads like ``campaigns[1] (post-delivery).send_window.start``, so an admin can fix a file in one pass.
The field parsers raise :class:`Reject` with a message that completes "<path>: ..."; a :class:`Section` (one
YAML mapping being read) turns it into a :class:`Problem` and reads on.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from campaigns.definitions.model import CampaignDefinition

__all__ = [
    "CampaignFileError",
    "ParsedFile",
    "Problem",
    "Reject",
    "Report",
    "Section",
    "describe",
    "quote",
    "unknown_key_message",
]

T = TypeVar("T")
D = TypeVar("D")  # the type of a default, which may differ from the parsed type (e.g. None)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a campaign file; ``path`` is empty for problems of the file as a whole."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class CampaignFileError(ValueError):
    """A campaign file is invalid; ``problems`` lists every problem found, str() shows one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class ParsedFile:
    """The campaigns of a valid file and warnings worth showing (e.g. an SMS text that is too long)."""

    campaigns: list[CampaignDefinition]
    warnings: list[str]


class Reject(Exception):
    """A value is invalid; the message completes "<path>: ..."."""


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Contact properties the templates may use (seen on contacts or declared); None: variables not checked.
    known_properties: frozenset[str] | None = None

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")


@dataclass
class Section:
    """One YAML mapping being read: reports problems under its path and remembers which keys failed.

    A failed field reads as its default so reading can go on and find the other problems; checks that combine
    fields ask :meth:`valid` first, so a bad value never causes a second, misleading complaint.
    """

    data: Mapping[Any, object]
    path: str
    report: Report
    failed: set[str] = field(default_factory=set)

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def given(self, key: str) -> bool:
        return self.data.get(key) is not None

    def valid(self, *keys: str) -> bool:
        return not self.failed.intersection(keys)

    def fail(self, key: str, message: str) -> None:
        self.report.problem(self.at(key), message)
        self.failed.add(key)

    def read(
        self, key: str, parse: Callable[[object], T], default: D, *, null_is_value: bool = False
    ) -> T | D:
        """The parsed value of ``key``; ``default`` when absent (or null, unless null means something)."""
        if key not in self.data or (self.data[key] is None and not null_is_value):
            return default
        try:
            return parse(self.data[key])
        except Reject as reject:
            self.fail(key, str(reject))
            return default

    def require(self, key: str, parse: Callable[[object], T], what: str) -> T | None:
        if not self.given(key):
            self.fail(key, f"is required ({what})")
            return None
        return self.read(key, parse, None)

    def child(self, key: str, what: str) -> Section | None:
        """The section under ``key``; None (with a problem when it is not a mapping) when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.fail(key, f"must be a mapping ({what}), not {describe(value)}")
            return None
        return Section(value, self.at(key), self.report)

    def check_keys(self, known: Iterable[str], listing: str = "known fields") -> None:
        """Report keys that are not fields, suggesting the closest one (a typo would otherwise be ignored)."""
        known = list(known)
        for key in self.data:
            if key not in known:
                self.report.problem(self.at(str(key)), unknown_key_message(key, known, listing))


def unknown_key_message(key: object, known: list[str], listing: str = "known fields") -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"{listing}: {', '.join(known)}"
    return f"unknown field '{key}'; {hint}"


def describe(value: object) -> str:
    if isinstance(value, str):
        return f"text {quote(value)}"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def quote(value: object, limit: int = 60) -> str:
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text) if any(char in text for char in "\n\r\t'") else f"'{text}'"
