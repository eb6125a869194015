from __future__ import annotations

import pytest

from campaigns.messages.optout import says_how_to_opt_out, with_opt_out

EN = "Reply STOP to opt out."


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Rate us 0-10. STOP to end", True),
        ("Rate us 0-10, text STOP.", True),
        ("请回复0-10，回复STOP取消", True),  # no space around the keyword in Chinese
        ("Rate us 0-10. Reply STOP to opt out.", True),
        ("Rate us 0-10", False),
        ("Non-stop support: rate us 0-10", False),  # the word, not the keyword
        ("Rate our STOPWATCH 0-10", False),
    ],
)
def test_says_how_to_opt_out(text: str, says: bool) -> None:
    assert says_how_to_opt_out(text, EN) is says


def test_the_instruction_goes_on_its_own_line_only_when_missing() -> None:
    assert with_opt_out("Rate us 0-10", EN) == "Rate us 0-10\nReply STOP to opt out."
    assert with_opt_out("Rate us 0-10. STOP to end", EN) == "Rate us 0-10. STOP to end"
    assert with_opt_out("请回复0-10", "回复STOP退订。") == "请回复0-10\n回复STOP退订。"
