"""The campaign file's `recovery` field: a re-survey `after_days` after a detractor's follow-up is resolved."""

from __future__ import annotations

import pytest

from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.json_codec import definition_from_json, definition_to_json
from campaigns.definitions.problems import CampaignFileError

BASE = """\
campaigns:
  - name: pulse
    kind: relationship
"""


def parse(extra: str) -> list[str]:
    try:
        parse_campaign_file(BASE + extra)
    except CampaignFileError as error:
        return [str(problem) for problem in error.problems]
    return []


def test_recovery_is_off_by_default() -> None:
    [campaign] = parse_campaign_file(BASE).campaigns
    assert campaign.recovery_after_days is None
    assert "recovery_after_days" not in definition_to_json(campaign)  # stored definitions compare unchanged


@pytest.mark.parametrize(
    "field",
    [
        "    recovery: {after_days: 14}\n",
        "    recovery:\n      after_days: 14\n",
        "    recovery: {after_days: 14.0}\n",
    ],
)
def test_recovery_after_days_is_read_and_stored(field: str) -> None:
    [campaign] = parse_campaign_file(BASE + field).campaigns
    assert campaign.recovery_after_days == 14
    assert definition_from_json(definition_to_json(campaign)) == campaign


@pytest.mark.parametrize("off", ["off", "false", "null", "never"])
def test_recovery_can_be_written_as_off(off: str) -> None:
    [campaign] = parse_campaign_file(BASE + f"    recovery: {off}\n").campaigns
    assert campaign.recovery_after_days is None


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (
            "    recovery: 14\n",
            "campaigns[0] (pulse).recovery: must be a mapping such as {after_days: 14}, or off, not the number 14",
        ),
        (
            "    recovery: {}\n",
            "campaigns[0] (pulse).recovery.after_days: is required (the days between resolving a detractor's "
            "follow-up and the re-survey, e.g. 14)",
        ),
        (
            "    recovery: {after_day: 14}\n",
            "campaigns[0] (pulse).recovery.after_day: unknown field 'after_day'; did you mean 'after_days'?",
        ),
        (
            "    recovery: {after_days: 0}\n",
            "campaigns[0] (pulse).recovery.after_days: must be from 1 to 90 days, not 0",
        ),
        (
            "    recovery: {after_days: 91}\n",
            "campaigns[0] (pulse).recovery.after_days: must be from 1 to 90 days, not 91",
        ),
        (
            "    recovery: {after_days: 2w}\n",
            "campaigns[0] (pulse).recovery.after_days: must be a whole number of days, not text '2w'",
        ),
    ],
)
def test_recovery_problems_say_how_to_write_it(field: str, expected: str) -> None:
    assert expected in parse(field)


def test_a_bad_recovery_is_reported_with_the_other_problems_of_the_file() -> None:
    problems = parse("    recovery: {after_days: -1}\n    interval_days: 0\n")
    assert len(problems) == 2


def test_recovery_cannot_be_combined_with_an_anonymous_campaign() -> None:
    problems = parse("    anonymous: true\n    recovery: {after_days: 14}\n")
    assert len(problems) == 1
    assert "recovery" in problems[0] and "anonymous campaign opens no follow-ups" in problems[0]
    assert parse("    anonymous: false\n    recovery: {after_days: 14}\n") == []
