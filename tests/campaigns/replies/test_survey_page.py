"""The survey page's flow without HTTP: the scores a link or form may give. The pages: tests/service/web/."""

from __future__ import annotations

import pytest

from campaigns.replies.survey_page import parse_score


@pytest.mark.parametrize(("raw", "score"), [("0", 0), ("7", 7), (" 10 ", 10), ("09", 9)])
def test_a_score_is_ascii_digits_from_0_to_10(raw: str, score: int) -> None:
    assert parse_score(raw) == score


@pytest.mark.parametrize("raw", [None, "", "11", "100", "-1", "7.5", "seven", "７", "٣", "010"])
def test_anything_else_is_no_score(raw: str | None) -> None:
    assert parse_score(raw) is None
