"""Block Kit for a burst summary (`bot.bursts`): one line per case, most urgent first, each with an Open button
that posts the case on its own, where it can be acknowledged, assigned and resolved."""

from __future__ import annotations

from bot import ids
from bot.blocks import NAME_LIMIT, Block, Case
from bot.mrkdwn import customer_text, escape, verbatim

COMMENT_LIMIT = 200  # characters of the comment on a summary line


def summary_text(count: int) -> str:
    """The message's `text` (notifications): counts only, no customer text."""
    return f"{count} more {_detractors(count)} at once: one line each, the most urgent first"


def summary_blocks(
    lines: list[tuple[int, Case]], *, part: int, parts: int, per_minute: int, moved: int = 0
) -> list[Block]:
    """`lines`: (alert id, case) in the summary's order; `moved`: cases it listed that are now posted on their
    own (opened, changed, corrected): their lines are gone, so that each case is in one place only."""
    count = len(lines)
    of = f" ({part} of {parts})" if parts > 1 else ""
    head = (
        f":rotating_light: *{count} more {_detractors(count)} at once*{of}: beyond the {per_minute} a minute this "
        "channel gets one by one. The most urgent first; *Open* posts a case on its own, with its buttons."
    )
    blocks: list[Block] = [{"type": "section", "text": {"type": "mrkdwn", "text": head}}]
    blocks.extend(_line(alert_id, case) for alert_id, case in lines)
    if moved:
        cases = "1 case has" if moved == 1 else f"{moved} cases have"
        note = f"{cases} left this summary: each posted on its own in this channel, or no longer a detractor."
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return blocks


def _line(alert_id: int, case: Case) -> Block:
    if case.hidden:
        who = "_a customer_"
    else:
        who = "*" + customer_text(
            case.contact_name or case.contact_external_id or "Unknown contact", NAME_LIMIT
        )
        who += "*"
    text = f"*{case.score}/10* · {who} · {escape(case.campaign or '-')} via {case.channel}"
    if case.comment:
        text += "\n>" + customer_text(case.comment, COMMENT_LIMIT)
    return {
        "type": "section",
        "text": verbatim(text),
        "accessory": {
            "type": "button",
            "action_id": ids.open_case(alert_id),
            "value": str(alert_id),
            "text": {"type": "plain_text", "text": "Open"},
        },
    }


def _detractors(count: int) -> str:
    return "detractor" if count == 1 else "detractors"
