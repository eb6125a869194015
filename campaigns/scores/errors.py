"""Why a score query cannot be answered as asked; each message is meant for the person who asked."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class QueryError(ValueError):
    """A query that cannot be answered as asked; the message is meant for the person who asked."""


class UnknownCampaign(QueryError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        close = difflib.get_close_matches(name, known, n=1)
        hint = (
            f"; did you mean `{close[0]}`?" if close else ("; `/nps campaigns` lists them" if known else "")
        )
        super().__init__(f"there is no campaign called `{name}`{hint}")
        self.name, self.suggestion = name, close[0] if close else None
