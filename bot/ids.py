"""Every Block Kit id the app sends and listens for: the builders in `bot.blocks` and the listeners in
`bot.listeners` both read them from here, so a renamed id cannot leave a button without its handler."""

from __future__ import annotations

# action_id of the alert's buttons and user picker
ACK = "alert_acknowledge"
ASSIGN = "alert_assign"
RESOLVE = "alert_resolve"

# block_id of the alert's actions block: the prefix, then the follow-up's id
FOLLOW_UP_BLOCK = "follow_up:"

# the resolve modal: its callback_id, then block_id / action_id of its two inputs
RESOLVE_VIEW = "resolve_follow_up"
OUTCOME_BLOCK, OUTCOME_NOTE = "outcome", "note"
METHOD_BLOCK, METHOD_CHOICE = "method", "choice"


def follow_up_block(follow_up_id: int | str) -> str:
    return f"{FOLLOW_UP_BLOCK}{follow_up_id}"


def follow_up_of_block(block_id: str) -> int:
    """The follow-up id in an actions block's id; 0 when there is none."""
    tail = block_id.rpartition(":")[2]
    return int(tail) if tail.isdecimal() else 0
