"""The ``recovery`` field of a campaign file: re-survey a detractor some days after their follow-up is resolved.

Written ``recovery: {after_days: 14}``; absent, null or ``off`` means no re-survey (the default). Kept in a
module of its own so that the campaign file reader only names it.
"""

from __future__ import annotations

from collections.abc import Mapping

from campaigns.definitions.fields import int_parser
from campaigns.definitions.problems import Section, describe

__all__ = ["MAX_RECOVERY_DAYS", "RECOVERY_HELP", "read_recovery"]

# While a re-survey waits, no other campaign plans a survey for that person (one waiting survey each): at most
# 90 days, the default fatigue window after the answer that opened the case, so the wait keeps out little more
# than the fatigue rule already does.
MAX_RECOVERY_DAYS = 90
RECOVERY_HELP = "a mapping such as {after_days: 14}, or off"
_OFF = ("off", "no", "none", "never")


def read_recovery(campaign: Section) -> int | None:
    """The days between resolving a follow-up and its re-survey, or None for no re-survey."""
    value = campaign.data.get("recovery")
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in _OFF):
        return None
    if not isinstance(value, Mapping):
        campaign.fail("recovery", f"must be {RECOVERY_HELP}, not {describe(value)}")
        return None
    before = len(campaign.report.problems)
    section = Section(value, campaign.at("recovery"), campaign.report)
    section.check_keys(("after_days",))
    after_days = section.require(
        "after_days",
        int_parser(1, MAX_RECOVERY_DAYS, "days"),
        "the days between resolving a detractor's follow-up and the re-survey, e.g. 14",
    )
    if len(campaign.report.problems) > before:
        campaign.failed.add("recovery")
        return None
    return after_days
