"""The weekly digest: last week's NPS and its change, response rate, comment themes, follow-ups closed on time."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.deps import SlackDeps
from bot.mrkdwn import customer_text, verbatim
from bot.query import formatting
from campaigns.scores import queries
from campaigns.scores.periods import Period
from storage.enums import FollowUpStatus
from storage.tables import FollowUp, Response

# Words too common to be a theme, in the languages we ship most.
STOPWORDS = set(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "is",
        "was",
        "were",
        "it",
        "this",
        "that",
        "i",
        "we",
        "you",
        "they",
        "my",
        "our",
        "your",
        "me",
        "us",
        "very",
        "so",
        "not",
        "no",
        "yes",
        "be",
        "been",
        "are",
        "have",
        "has",
        "had",
        "at",
        "as",
        "by",
        "from",
        "just",
        "really",
        "too",
        "also",
        "all",
        "more",
        "most",
        "some",
        "any",
        "can",
        "could",
        "would",
        "der",
        "die",
        "das",
        "und",
        "ist",
        "nicht",
        "ein",
        "eine",
        "zu",
        "mit",
        "el",
        "la",
        "los",
        "las",
        "y",
        "de",
        "que",
        "en",
        "es",
        "por",
        "un",
        "una",
        "le",
        "les",
        "et",
        "est",
        "pas",
        "des",
        "du",
    ]
)
THEMES = 5


def themes(comments: list[str], top: int = THEMES) -> list[tuple[str, int]]:
    """The most frequent meaningful words of the comments (each counted once per comment)."""
    counts: Counter[str] = Counter()
    for comment in comments:
        words = {w for w in re.findall(r"[^\W\d_]{3,}", comment.lower()) if w not in STOPWORDS}
        counts.update(words)
    return [(word, n) for word, n in counts.most_common(top) if n > 1]


def digest_blocks(*, session: Session, now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    period = Period(now - timedelta(days=7), now, label="last 7 days", days=7, tz=tz)
    report = queries.score(session=session, period=period)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Weekly NPS digest"}},
        *formatting.score_blocks(report, "last 7 days"),
    ]
    comments = list(
        session.scalars(
            select(Response.comment).where(
                Response.answered_at >= period.start,
                Response.answered_at < period.end,
                Response.comment.is_not(None),
            )
        )
    )
    found = themes([c for c in comments if c])
    if found:
        # words of customers' comments: shown verbatim (`here` must not become @here), each at most 40 characters
        text = "*Top comment themes:* " + ", ".join(f"{customer_text(word, 40)} ({n})" for word, n in found)
        blocks.append({"type": "section", "text": verbatim(text)})
    closed = (
        session.scalar(
            select(func.count())
            .select_from(FollowUp)
            .where(FollowUp.status == FollowUpStatus.RESOLVED, FollowUp.resolved_at >= period.start)
        )
        or 0
    )
    on_time = (
        session.scalar(
            select(func.count())
            .select_from(FollowUp)
            .where(
                FollowUp.status == FollowUpStatus.RESOLVED,
                FollowUp.resolved_at >= period.start,
                FollowUp.resolved_at <= FollowUp.due_at,
            )
        )
        or 0
    )
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Follow-ups closed:* {closed} ({on_time} on time)"},
        }
    )
    return blocks


def post_digest(deps: SlackDeps) -> None:
    """Post the digest to SLACK_DIGEST_CHANNEL (the scheduler's Monday-morning job)."""
    if not deps.digest_channel:
        return
    with deps.db.transaction() as session:
        blocks = digest_blocks(session=session, now=deps.clock.now(), tz=deps.timezone)
    deps.client.chat_postMessage(channel=deps.digest_channel, text="Weekly NPS digest", blocks=blocks)
