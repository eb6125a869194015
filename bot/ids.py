"""Every Block Kit id the app sends and listens for: the builders in `bot.blocks` and the listeners in
`bot.listeners` both read them from here, so a renamed id cannot leave a button without its handler."""

from __future__ import annotations

# action_id of the alert's buttons and user picker
ACK = "alert_acknowledge"
ASSIGN = "alert_assign"
RESOLVE = "alert_resolve"
REOPEN = "alert_reopen"  # on a resolved case

# action_id of a burst summary's Open buttons: the prefix, then the alert's id (action ids differ within a message)
OPEN_CASE = "summary_open:"

# block_id of the alert's actions block: the prefix, then the follow-up's id
FOLLOW_UP_BLOCK = "follow_up:"

# the resolve modal: its callback_id, then block_id / action_id of its two inputs
RESOLVE_VIEW = "resolve_follow_up"
OUTCOME_BLOCK, OUTCOME_NOTE = "outcome", "note"
METHOD_BLOCK, METHOD_CHOICE = "method", "choice"


MAX_ID = 2**31 - 1
"""The largest id the database holds (PostgreSQL's `integer`; SQLite's go to 2**63 - 1): an id in a button value,
block_id or private_metadata is checked against it before any query, which would fail on a larger one."""


def valid_id(follow_up_id: int) -> bool:
    return 0 < follow_up_id <= MAX_ID


def number(value: object) -> int:
    """A follow-up id from a button's value or a modal's metadata; 0 when it names none the database can hold."""
    text = str(value or "")
    found = int(text) if text.isdecimal() and text.isascii() and len(text) <= 10 else 0
    return found if valid_id(found) else 0


def follow_up_block(follow_up_id: int | str) -> str:
    return f"{FOLLOW_UP_BLOCK}{follow_up_id}"


def follow_up_of_block(block_id: str) -> int:
    """The follow-up id in an actions block's id; 0 when there is none."""
    return number(block_id.rpartition(":")[2])


def open_case(alert_id: int) -> str:
    return f"{OPEN_CASE}{alert_id}"
