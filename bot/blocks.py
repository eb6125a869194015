"""Block Kit for the alert messages: what a manager sees in the alert channel and in DMs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import ids
from bot.mrkdwn import customer_text, cut, escape, one_line, quote, verbatim
from campaigns.privacy import mask_email, mask_phone, mask_text
from storage.enums import ContactMethod, FollowUpStatus

Block = dict[str, Any]

KEY_PROPERTIES = 6  # properties shown on an alert; the rest are in `/nps contact`
NOTIFICATION_LIMIT = 300
"""Characters of a message's `text`, what notifications show (Slack advises at most 4,000; ours is a glance)."""
TEXT_LIMIT = 2900  # of a section's text; Slack allows 3,000
NAME_LIMIT = 100  # of a contact's name or external id wherever it is shown


@dataclass(frozen=True)
class Case:
    """Everything an alert shows, loaded by the poster."""

    follow_up_id: int | None
    score: int
    category: str
    comment: str | None
    contact_name: str | None
    contact_external_id: str | None
    phone: str | None
    email: str | None
    campaign: str | None
    channel: str
    properties: dict[str, Any]
    previous_scores: list[tuple[datetime, int]]
    answered_at: datetime
    status: FollowUpStatus | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    assignee: str | None = None
    assigned_by: str | None = None
    due_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    outcome_note: str | None = None
    contact_method: ContactMethod | None = None
    # The campaign's recovery re-survey of this case, when one is planned (due) or went out (sent).
    re_survey_at: datetime | None = None
    re_survey_sent: bool = False
    hidden: bool = False  # who the customer is was left out (`anonymous`)


def anonymous(case: Case) -> Case:
    """The case without who the customer is: no name, id or contact details, the properties left out (a CSV
    import keeps every column, emails and phones included), and phone numbers and emails written in the comment
    or the outcome masked. For messages to people who may not see personal data (`bot.permissions`)."""
    return dataclasses.replace(
        case,
        contact_name=None,
        contact_external_id=None,
        phone=None,
        email=None,
        properties={},
        comment=mask_text(case.comment) if case.comment else case.comment,
        outcome_note=mask_text(case.outcome_note) if case.outcome_note else case.outcome_note,
        hidden=True,
    )


def _when(at: datetime | None) -> str:
    if at is None:
        return "-"
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def _who(case: Case) -> str:
    """The contact's name (or id) and masked phone and email, as mrkdwn for a verbatim text object."""
    if case.hidden:
        return "_a customer (details for those who may see them)_"
    name = customer_text(case.contact_name or case.contact_external_id or "Unknown contact", NAME_LIMIT)
    reach = " · ".join(
        customer_text(x, 60)
        for x in (
            mask_phone(case.phone) if case.phone else None,
            mask_email(case.email) if case.email else None,
        )
        if x
    )
    return f"*{name}*" + (f" ({reach})" if reach else "")


def _label(case: Case) -> str:
    return {"detractor": "Detractor", "passive": "Passive", "promoter": "Promoter"}[case.category]


def headline(case: Case) -> str:
    """The header, a plain_text object: Slack shows it as typed and parses nothing, so it is cut, not escaped."""
    who = cut(one_line(case.contact_name or case.contact_external_id or "a customer"), NAME_LIMIT)
    return cut(f"{_label(case)} {case.score}/10 from {who}", 150)


def notification_text(case: Case) -> str:
    """The message's `text`: mrkdwn, escaped and short (the blocks show the whole case)."""
    who = customer_text(case.contact_name or case.contact_external_id or "a customer", NAME_LIMIT)
    head = f"{_label(case)} {case.score}/10 from {who}"
    if not case.comment:
        return head
    return f'{head}: "{customer_text(case.comment, NOTIFICATION_LIMIT - len(head) - 4)}"'


def alert_blocks(case: Case, *, with_actions: bool = True) -> list[Block]:
    comment = verbatim(quote(case.comment, TEXT_LIMIT)) if case.comment else verbatim("_No comment yet._")
    fields = [
        {"type": "mrkdwn", "text": f"*Score*\n{case.score}/10 ({case.category})"},
        verbatim(f"*Contact*\n{_who(case)}"),
        {"type": "mrkdwn", "text": f"*Campaign*\n{escape(case.campaign or '-')} via {case.channel}"},
        {"type": "mrkdwn", "text": f"*Answered*\n{_when(case.answered_at)}"},
    ]
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline(case)}},
        {"type": "section", "text": comment},
        {"type": "section", "fields": fields},
    ]
    shown = list(case.properties.items())[:KEY_PROPERTIES]
    if shown:
        # 6 x (40 + 300 + 6) characters at most: within a context element's 3,000
        text = "  ".join(f"*{customer_text(key, 40)}:* {customer_text(value, 300)}" for key, value in shown)
        blocks.append({"type": "context", "elements": [verbatim(text)]})
    if case.previous_scores:
        history = ", ".join(f"{score} ({at:%Y-%m-%d})" for at, score in case.previous_scores[:8])
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Previous scores: {history}"}]}
        )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": status_line(case)}]})
    if with_actions and case.follow_up_id is not None:
        blocks.append(_reopen(case) if case.status == FollowUpStatus.RESOLVED else _actions(case))
    return blocks


def status_line(case: Case) -> str:
    parts = []
    if case.status == FollowUpStatus.RESOLVED:
        parts.append(f":white_check_mark: Resolved by <@{case.resolved_by}> {_when(case.resolved_at)}")
        if case.contact_method:
            parts.append(f"contacted by {case.contact_method}")
        if case.outcome_note:
            parts.append(f"outcome: {customer_text(case.outcome_note, 2000)}")
        if case.re_survey_at is not None:
            parts.append(
                f"re-survey {'sent' if case.re_survey_sent else 'planned for'} {_when(case.re_survey_at)}"
            )
        return " · ".join(parts)
    if case.acknowledged_by:
        parts.append(f":eyes: Acknowledged by <@{case.acknowledged_by}> {_when(case.acknowledged_at)}")
    if case.assignee:
        parts.append(f":bust_in_silhouette: Assigned to <@{case.assignee}> by <@{case.assigned_by}>")
    if case.due_at:
        parts.append(f"due {_when(case.due_at)}")
    return " · ".join(parts) if parts else ":red_circle: Open, nobody has picked it up yet"


def _actions(case: Case) -> Block:
    value = str(case.follow_up_id)
    elements: list[Block] = []
    if not case.acknowledged_by:
        elements.append(
            {
                "type": "button",
                "action_id": ids.ACK,
                "value": value,
                "text": {"type": "plain_text", "text": "Acknowledge"},
            }
        )
    assign: Block = {
        "type": "users_select",
        "action_id": ids.ASSIGN,
        "placeholder": {"type": "plain_text", "text": "Assign..."},
    }
    if case.assignee:
        assign["initial_user"] = case.assignee
    elements.append(assign)
    elements.append(
        {
            "type": "button",
            "action_id": ids.RESOLVE,
            "value": value,
            "style": "primary",
            "text": {"type": "plain_text", "text": "Resolve..."},
        }
    )
    return {"type": "actions", "block_id": ids.follow_up_block(value), "elements": elements}


def _reopen(case: Case) -> Block:
    """A resolved case can be reopened (the customer came back); that cancels a re-survey not yet sent."""
    value = str(case.follow_up_id)
    button = {
        "type": "button",
        "action_id": ids.REOPEN,
        "value": value,
        "text": {"type": "plain_text", "text": "Reopen"},
    }
    return {"type": "actions", "block_id": ids.follow_up_block(value), "elements": [button]}


def resolve_modal(follow_up_id: int, channel: str | None, ts: str | None) -> Block:
    return {
        "type": "modal",
        "callback_id": ids.RESOLVE_VIEW,
        "private_metadata": f"{follow_up_id}|{channel or ''}|{ts or ''}",
        "title": {"type": "plain_text", "text": "Resolve follow-up"},
        "submit": {"type": "plain_text", "text": "Resolve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": ids.OUTCOME_BLOCK,
                "label": {"type": "plain_text", "text": "Outcome"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.OUTCOME_NOTE,
                    "multiline": True,
                    "min_length": 3,
                },
            },
            {
                "type": "input",
                "block_id": ids.METHOD_BLOCK,
                "label": {"type": "plain_text", "text": "How was the customer contacted?"},
                "element": {
                    "type": "static_select",
                    "action_id": ids.METHOD_CHOICE,
                    "options": [
                        {"text": {"type": "plain_text", "text": m}, "value": m} for m in ContactMethod
                    ],
                },
            },
        ],
    }


def refusal_modal(text: str) -> Block:
    """What a Resolve modal shows instead of its form when the clicker may not resolve (checked after opening)."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Resolve follow-up"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


def kudos_blocks(case: Case) -> list[Block]:
    text = f":tada: *{case.score}/10* from {_who(case)} ({escape(case.campaign or '-')})"
    if case.comment:
        text += "\n" + quote(case.comment, TEXT_LIMIT - len(text) - 1)
    return [{"type": "section", "text": verbatim(text)}]


def dm_blocks(kind: str, case: Case, permalink_hint: str) -> list[Block]:
    intro = {
        "assigned": f"You were assigned a follow-up by <@{case.assigned_by}>, due {_when(case.due_at)}.",
        "reminder": f"Reminder: this follow-up is due {_when(case.due_at)}.",
    }.get(kind, "")
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{intro} {permalink_hint}".strip()}},
        *alert_blocks(case, with_actions=False),
    ]


def withheld_dm_text(kind: str, case: Case) -> str:
    return {
        "assigned": "You were assigned a follow-up",
        "reminder": "Reminder: a follow-up of yours is due",
    }.get(kind, "A follow-up of yours")


def withheld_dm_blocks(kind: str, case: Case) -> list[Block]:
    """A DM to an assignee who may no longer act on the case (not a responder any more): when it is due, and
    nothing of the customer or what they said."""
    text = (
        f"{withheld_dm_text(kind, case)} {_when(case.due_at)}, but you may no longer act on it, so its details "
        "are not shown. Ask an admin to reassign it if it should stay with you."
    )
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def escalation_blocks(kind: str, case: Case) -> list[Block]:
    text = {
        "overdue": f":rotating_light: Overdue follow-up (due {_when(case.due_at)})"
        + (f", assigned to <@{case.assignee}>" if case.assignee else ", unassigned"),
        "unacknowledged": ":rotating_light: Nobody has acknowledged this detractor yet",
    }[kind]
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        *alert_blocks(case, with_actions=False),
    ]


ALERT_EVENT = "nps_alert"
"""Slack message metadata `event_type` of every alert: lets the poster find a message whose ts it never stored."""


def alert_metadata(alert_id: int, revision: int) -> dict[str, Any]:
    """Message metadata naming the alert and the revision the message shows (chat.postMessage, chat.update)."""
    return {"event_type": ALERT_EVENT, "event_payload": {"alert_id": alert_id, "revision": revision}}


def withdrawn_text(case: Case) -> str:
    """mrkdwn (escaped) for the message and its notification."""
    who = customer_text(case.contact_name or case.contact_external_id or "The customer", NAME_LIMIT)
    return f"Withdrawn: {who} corrected the answer to {case.score}/10 ({case.category})"


def withdrawn_blocks(case: Case) -> list[Block]:
    """An alert whose score was corrected away from its kind: the old score is gone, and nothing is left to do."""
    return [
        {
            "type": "section",
            "text": verbatim(f":leftwards_arrow_with_hook: {withdrawn_text(case)}"),
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Answered {_when(case.answered_at)}; this alert no longer applies.",
                }
            ],
        },
    ]
