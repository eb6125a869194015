"""Slack's Block Kit rules as slack_sdk's own models know them, for the fake Slack and for tests.

Real Slack answers `invalid_blocks` to a payload it cannot read; the fake does the same with these checks, so every
message, update, ephemeral, view and response_url post the app makes in any test is validated, not only those a
test looks at. A model that reads a block and writes back something different means a misspelt or unknown key
that Slack would drop or refuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MAX_BLOCKS = 50
"""Slack's limit for a message; views allow 100."""
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 3000
MAX_FIELD_TEXT = 2000


def _text_objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every text object (plain_text or mrkdwn) anywhere in a payload."""
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and "text" in node:
            yield node
        for value in node.values():
            yield from _text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _text_objects(item)


def _text_problems(blocks: list[Any]) -> list[str]:
    """Limits slack_sdk's models leave out: no empty text, texts of at most 3,000 and section fields of at most
    2,000 characters."""
    problems = [
        f"text object empty or over {MAX_TEXT} characters: {text!r:.200}"
        for text in _text_objects(blocks)
        if not (isinstance(text["text"], str) and 0 < len(text["text"]) <= MAX_TEXT)
    ]
    for block in blocks:
        for field in block.get("fields", []) if isinstance(block, dict) else []:
            if len(str(field.get("text", ""))) > MAX_FIELD_TEXT:
                problems.append(f"section field over {MAX_FIELD_TEXT} characters: {field!r:.200}")
    return problems


def block_problems(blocks: Any, limit: int = MAX_BLOCKS) -> list[str]:
    """What is wrong with a list of blocks, as Slack would refuse it; empty when Slack accepts it."""
    if not isinstance(blocks, list) or not 0 < len(blocks) <= limit:
        return [f"blocks must be a list of 1 to {limit} blocks, got {blocks!r:.200}"]
    problems: list[str] = []
    for block in blocks:
        try:
            parsed = Block.parse(block)
            if parsed is None:
                problems.append(f"unknown block type: {block!r:.200}")
            elif parsed.to_dict() != block:  # to_dict() runs the model's validation
                problems.append(f"block not read back as built (unknown or misspelt key?): {block!r:.300}")
        except (SlackObjectFormationError, TypeError, KeyError, ValueError) as error:
            problems.append(f"invalid block ({error}): {block!r:.200}")
    return problems + _text_problems(blocks)


def view_problems(view: Any) -> list[str]:
    """What is wrong with a view (App Home, a modal) as slack_sdk's View model reads it, and with its blocks."""
    if not isinstance(view, dict):
        return [f"view must be an object, got {view!r:.200}"]
    try:
        if View(**view).to_dict() != view:
            return [f"view not read back as built (unknown or misspelt key?): {view!r:.300}"]
    except (SlackObjectFormationError, TypeError, KeyError, ValueError) as error:
        return [f"invalid view ({error}): {view!r:.200}"]
    return block_problems(view.get("blocks"), MAX_VIEW_BLOCKS)
