"""Themes: what the comments talk about, per category, and which words detractors use more than promoters.

No external service: comments are read once, streamed (`yield_per`), tokenised per language
(campaigns/scores/tokens.py) and counted, each word and two-word phrase once per comment, so memory grows with
the vocabulary, not with the number of comments. Over-represented terms come from a two-proportion z-test on
the share of detractors' against promoters' comments that mention them (|z| >= 1.96, at least MIN_MENTIONS
mentions).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.scores import anonymity
from campaigns.scores.filters import NO_FILTERS, Filters, Scope
from campaigns.scores.periods import Period
from campaigns.scores.tokens import comment_terms
from storage.enums import Category
from storage.tables import Response

MIN_MENTIONS = 5
Z_95 = 1.96
PAGE = 1_000


@dataclass(frozen=True)
class Leaning:
    term: str
    detractors: int  # detractors' comments that mention it
    promoters: int
    z: float  # > 0: detractors say it more


@dataclass
class ThemesReport:
    comments: Counter[Category] = field(default_factory=Counter)
    words: dict[Category, Counter[str]] = field(default_factory=lambda: {c: Counter() for c in Category})
    phrases: dict[Category, Counter[str]] = field(default_factory=lambda: {c: Counter() for c in Category})

    def top(self, category: Category, n: int = 10) -> list[tuple[str, int]]:
        """Phrases first where a phrase is as frequent as its words: "support team" says more than "team"."""
        merged = self.phrases[category] + self.words[category]
        return sorted(merged.items(), key=lambda item: (-item[1], -item[0].count(" "), item[0]))[:n]

    def leaning(self, n: int = 10) -> list[Leaning]:
        """Up to `n` terms detractors use significantly more (z > 0), then up to `n` they use less (z < 0),
        strongest first."""
        n_d, n_p = self.comments[Category.DETRACTOR], self.comments[Category.PROMOTER]
        if not n_d or not n_p:
            return []
        found = []
        for counts in (self.words, self.phrases):
            for term in counts[Category.DETRACTOR].keys() | counts[Category.PROMOTER].keys():
                a, b = counts[Category.DETRACTOR][term], counts[Category.PROMOTER][term]
                if a + b < MIN_MENTIONS:
                    continue
                z = _z(a, n_d, b, n_p)
                if abs(z) >= Z_95:
                    found.append(Leaning(term, a, b, z))
        found.sort(key=lambda item: (-abs(item.z), item.term))
        return [item for item in found if item.z > 0][:n] + [item for item in found if item.z < 0][:n]


def _z(a: int, n_a: int, b: int, n_b: int) -> float:
    """Two-proportion z statistic with the pooled share; 0 when the pooled share is 0 or 1 (nothing to tell)."""
    pooled = (a + b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return 0.0 if spread == 0 else (a / n_a - b / n_b) / spread


def themes(*, session: Session, period: Period, filters: Filters = NO_FILTERS) -> ThemesReport:
    scope = Scope.resolve(session, filters)
    query = (
        select(Response.category, Response.comment, Response.campaign_id, Response.contact_id, Response.id)
        .where(*scope.responses(period), Response.comment.is_not(None))
        .execution_options(yield_per=PAGE)
    )
    report, anonymous = ThemesReport(), ThemesReport()
    people = _People()
    anonymous_ids = set(anonymity.anonymous_campaign_ids(session))
    for category, comment, campaign_id, contact_id, response_id in session.execute(query):
        words, phrases = comment_terms(comment or "")
        if not words:
            continue
        if campaign_id in anonymous_ids:  # an erased contact's answer is a person of its own
            people.add(
                Category(category), contact_id if contact_id is not None else -response_id, words, phrases
            )
        for counted in (report, anonymous) if campaign_id in anonymous_ids else (report,):
            counted.comments[Category(category)] += 1
            counted.words[Category(category)].update(words)
            counted.phrases[Category(category)].update(phrases)
    return _without_small_groups(report, anonymous, people) if anonymous_ids else report


@dataclass
class _People:
    """Who wrote the anonymous comments of each category, and each term: five comments of one person are one
    person's words (a name they repeat in every pulse), not a group of five."""

    comments: dict[Category, set[int]] = field(default_factory=lambda: {c: set() for c in Category})
    terms: dict[Category, dict[str, set[int]]] = field(default_factory=lambda: {c: {} for c in Category})

    def add(self, category: Category, person: int, words: Iterable[str], phrases: Iterable[str]) -> None:
        self.comments[category].add(person)
        for term in {*words, *phrases}:
            self.terms[category].setdefault(term, set()).add(person)


def _without_small_groups(report: ThemesReport, anonymous: ThemesReport, people: _People) -> ThemesReport:
    """The eNPS rule (campaigns.scores.anonymity): a term, or a category's comments, counted from fewer than 5
    comments (or people) of which some are anonymous is left out; a rare word can name the one person who
    wrote it."""
    for category in Category:
        writers = len(people.comments[category])
        if anonymity.must_hide(report.comments[category], anonymous.comments[category], writers):
            report.comments[category] = 0
            report.words[category].clear()
            report.phrases[category].clear()
        for counts, anonymous_counts in (
            (report.words, anonymous.words),
            (report.phrases, anonymous.phrases),
        ):
            for term in list(anonymous_counts[category]):
                said_by = len(people.terms[category].get(term, ()))
                if anonymity.must_hide(counts[category][term], anonymous_counts[category][term], said_by):
                    del counts[category][term]
    return report
