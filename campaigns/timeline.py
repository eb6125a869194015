"""The story of what happened, told from the database: for an operator who did not keep the logs (`nps events`).

Every table that records a step of the loop adds its entries: invitations (planned, sent, delivered, expired,
given up), messages in and out with their send and delivery states, responses and comments, Slack alerts,
follow-up actions, consent changes and the audit trail. Entries are sorted by time, then by the order in which
the loop takes its steps, so that one survey reads top to bottom.

Personal data is masked unless the operator asks (`show_personal`): numbers and addresses are masked, and names,
replies' text, comments and outcome notes are left out (their length is shown). A contact is named by its
external id, masked like any text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from campaigns.channels.sms import describe_code
from campaigns.privacy import mask_email, mask_phone, mask_text
from campaigns.scores.anonymity import WITHHELD, anonymous_invitations, not_anonymous
from storage.enums import AuditEntity, Direction, InvitationState, MessagePurpose
from storage.tables import (
    AuditEntry,
    Campaign,
    Consent,
    Contact,
    FollowUp,
    Invitation,
    Message,
    Response,
    SlackAlert,
)

# Entries of one moment in the order the loop takes its steps.
_STEP = {
    "contact": 0,
    "consent": 1,
    "survey.planned": 2,
    "message.out": 3,
    "survey.sent": 4,
    "survey.delivered": 5,
    "message.in": 6,
    "reply": 7,
    "comment": 8,
    "follow_up.opened": 9,
    "alert.queued": 10,
    "alert.posted": 11,
    "message.answer": 12,
}
# What an outbound message is, by its purpose.
_OUTBOUND = {
    MessagePurpose.INVITATION: ("message.out", "survey message"),
    MessagePurpose.REMINDER: ("message.out", "reminder message"),
    MessagePurpose.CONVERSATION: ("message.answer", "answer to the person"),
    MessagePurpose.CLARIFICATION: ("message.answer", "clarification asked"),
}
_ENDED = {
    InvitationState.EXPIRED: "survey expired unanswered",
    InvitationState.UNDELIVERABLE: "survey undeliverable",
    InvitationState.CANCELLED: "survey cancelled",
    InvitationState.REVIEW: "survey held for review",
    InvitationState.FAILED: "survey failed",
}


@dataclass(frozen=True)
class Filters:
    contact: str | None = None  # external id, or the numeric id
    campaign: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Entry:
    at: datetime
    event: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # identifies the entry across polls (`nps events --follow`)

    def order(self) -> tuple[datetime, int, str]:
        return (self.at, _STEP.get(self.event, 50), self.key)


class UnknownContact(LookupError):
    pass


class UnknownCampaign(LookupError):
    pass


def timeline(filters: Filters, *, show_personal: bool = False, session: Session) -> list[Entry]:
    """Every entry the filters select, in time order."""
    story = _Story(filters, show_personal, session)
    entries = [e for e in story.entries() if _within(e.at, filters)]
    return sorted(entries, key=Entry.order)


def _within(at: datetime, filters: Filters) -> bool:
    return (filters.since is None or at >= filters.since) and (filters.until is None or at < filters.until)


class _Story:
    """Reads the rows the filters select and turns each into its entries."""

    def __init__(self, filters: Filters, show_personal: bool, session: Session) -> None:
        self.session = session
        self.show = show_personal
        self.contact_id = _contact_id(filters.contact, session) if filters.contact else None
        self.campaign_id = _campaign_id(filters.campaign, session) if filters.campaign else None
        self.since = filters.since
        self.campaigns = {row[0]: row[1] for row in session.execute(select(Campaign.id, Campaign.name))}
        self.contacts: dict[int, str] = {}
        self.answers_withheld: set[int] = (
            set()
        )  # invitations of anonymous campaigns: their replies are answers

    def entries(self) -> Iterator[Entry]:
        invitations = self._invitations()
        ids = [i.id for i in invitations]
        yield from (e for i in invitations for e in self._invitation(i))
        messages = self._messages(ids)
        self.answers_withheld = anonymous_invitations(self.session, (m.invitation_id for m in messages))
        yield from (e for m in messages for e in self._message(m))
        responses = self._responses(ids)
        yield from (e for r in responses for e in self._response(r))
        response_ids = [r.id for r in responses]
        follow_ups = self._rows(FollowUp, FollowUp.response_id.in_(response_ids)) if response_ids else []
        yield from (e for f in follow_ups for e in self._follow_up(f))
        alerts = self._rows(SlackAlert, SlackAlert.response_id.in_(response_ids)) if response_ids else []
        yield from (e for a in alerts for e in self._alert(a))
        if self.campaign_id is None:
            yield from (self._consent(c) for c in self._consents())
        yield from (self._audit(a) for a in self._audits([f.id for f in follow_ups]))

    # --- reading ---------------------------------------------------------------------------------------------

    def _rows(self, table: Any, *where: ColumnElement[bool]) -> list[Any]:
        return list(self.session.scalars(select(table).where(*where).order_by(table.id)))

    def _invitations(self) -> list[Invitation]:
        where: list[ColumnElement[bool]] = []
        if self.contact_id is not None:
            where.append(Invitation.contact_id == self.contact_id)
        if self.campaign_id is not None:
            where.append(Invitation.campaign_id == self.campaign_id)
        if self.since is not None:  # an invitation still changing may be older than the window
            where.append(Invitation.updated_at >= self.since)
        return self._rows(Invitation, *where)

    def _messages(self, invitation_ids: Sequence[int]) -> list[Message]:
        if self.contact_id is None and self.campaign_id is None:
            where: list[ColumnElement[bool]] = [Message.purpose != MessagePurpose.STATUS_CALLBACK]
            if self.since is not None:
                where.append(Message.updated_at >= self.since)
            return self._rows(Message, *where)
        linked: ColumnElement[bool] = Message.invitation_id.in_(invitation_ids)
        if self.contact_id is not None and self.campaign_id is None:
            linked = or_(linked, Message.contact_id == self.contact_id)
        return self._rows(Message, linked, Message.purpose != MessagePurpose.STATUS_CALLBACK)

    def _responses(self, invitation_ids: Sequence[int]) -> list[Response]:
        where: list[ColumnElement[bool]] = []
        if self.contact_id is not None:
            where.append(Response.contact_id == self.contact_id)
        if self.campaign_id is not None:
            where.append(Response.campaign_id == self.campaign_id)
        if self.since is not None:
            where.append(Response.updated_at >= self.since)
        # eNPS: a timeline is one person's; their answers to anonymous campaigns are never in it.
        return self._rows(Response, *where, *not_anonymous(self.session))

    def _consents(self) -> list[Consent]:
        if self.contact_id is None:
            return self._rows(Consent, *([Consent.changed_at >= self.since] if self.since else []))
        contact = self.session.get(Contact, self.contact_id)
        addresses = [a for a in ((contact.phone, contact.email) if contact else ()) if a]
        return self._rows(Consent, or_(Consent.contact_id == self.contact_id, Consent.address.in_(addresses)))

    def _audits(self, follow_up_ids: Sequence[int]) -> list[AuditEntry]:
        if self.contact_id is None and self.campaign_id is None:
            return self._rows(AuditEntry, *([AuditEntry.at >= self.since] if self.since else []))
        about = [
            (AuditEntity.FOLLOW_UP, [str(i) for i in follow_up_ids]),
        ]
        if self.contact_id is not None:
            about.append((AuditEntity.CONTACT, [str(self.contact_id)]))
        if self.campaign_id is not None:
            name = self.campaigns.get(self.campaign_id, "")
            about.append((AuditEntity.CAMPAIGN, [str(self.campaign_id), name]))
        return self._rows(
            AuditEntry,
            or_(*((AuditEntry.entity_type == kind) & AuditEntry.entity_id.in_(ids) for kind, ids in about)),
        )

    # --- wording ---------------------------------------------------------------------------------------------

    def _who(self, contact_id: int | None) -> str:
        if contact_id is None:
            return "-"
        if contact_id not in self.contacts:
            contact = self.session.get(Contact, contact_id)
            name = contact.external_id if contact else str(contact_id)
            if self.show and contact is not None and contact.name:
                name = f"{name} ({contact.name})"
            self.contacts[contact_id] = name
        return self.contacts[contact_id]

    def _address(self, address: str | None) -> str:
        if not address:
            return "-"
        if self.show:
            return address
        return mask_email(address) if "@" in address else mask_phone(address)

    def _free(self, text: str | None) -> str | None:
        """A person's own words: shown only when asked, otherwise how long they are."""
        if not text:
            return None
        if self.show:
            return text
        return f"({len(text)} character{'' if len(text) == 1 else 's'}; --show-personal-data shows them)"

    def _entry(self, at: datetime, event: str, words: str, key: str, **fields: Any) -> Entry:
        shown = {k: v for k, v in fields.items() if v is not None}
        text = words + (": " + " ".join(f"{k}={_quoted(v)}" for k, v in shown.items()) if shown else "")
        if self.show:
            return Entry(at, event, text, shown, key)
        return Entry(at, event, mask_text(text), {k: _masked(v) for k, v in shown.items()}, key)

    def _invitation(self, i: Invitation) -> Iterator[Entry]:
        ids = {
            "invitation": i.id,
            "campaign": self.campaigns.get(i.campaign_id),
            "contact": self._who(i.contact_id),
        }
        yield self._entry(
            i.created_at, "survey.planned", "survey planned", f"i{i.id}p", **ids, due=_t(i.due_at)
        )
        if i.sent_at:
            yield self._entry(i.sent_at, "survey.sent", "survey sent", f"i{i.id}s", **ids, channel=i.channel)
        if i.delivered_at:
            yield self._entry(i.delivered_at, "survey.delivered", "survey delivered", f"i{i.id}d", **ids)
        if i.reminded_at and i.state is not InvitationState.CLAIMED:
            yield self._entry(i.reminded_at, "reminder.sent", "reminder sent", f"i{i.id}r", **ids)
        if i.state in _ENDED:
            at = i.expires_at if i.state is InvitationState.EXPIRED and i.expires_at else i.updated_at
            why = None if i.state is InvitationState.EXPIRED else i.last_error
            yield self._entry(at, f"survey.{i.state}", _ENDED[i.state], f"i{i.id}e", **ids, why=why)

    def _message(self, m: Message) -> Iterator[Entry]:
        if m.direction is Direction.INBOUND:
            yield self._entry(
                m.created_at,
                "message.in",
                f"{m.channel} received",
                f"m{m.id}",
                message=m.id,
                invitation=m.invitation_id,
                **{"from": self._address(m.address)},
                text=WITHHELD if m.invitation_id in self.answers_withheld else self._free(m.body),
                handled=m.inbound_state,
            )
            return
        meaning = describe_code(m.error_code) if m.error_code else None
        event, words = _OUTBOUND.get(m.purpose, ("message.out", f"{m.purpose} message"))
        yield self._entry(
            m.created_at,
            event,
            f"{words} by {m.channel}",
            f"m{m.id}",
            message=m.id,
            invitation=m.invitation_id,
            to=self._address(m.address),
            state=m.send_state,
            delivery=m.delivery_status,
            code=m.error_code,
            meaning=meaning,
        )

    def _response(self, r: Response) -> Iterator[Entry]:
        ids = {"response": r.id, "invitation": r.invitation_id, "contact": self._who(r.contact_id)}
        words = f"reply recorded: score {r.score} ({r.category})" + (", late" if r.late else "")
        yield self._entry(r.answered_at, "reply", words, f"r{r.id}", **ids, channel=r.channel)
        if r.commented_at:
            yield self._entry(
                r.commented_at,
                "comment",
                "comment recorded",
                f"r{r.id}c",
                **ids,
                comment=self._free(r.comment),
            )

    def _follow_up(self, f: FollowUp) -> Iterator[Entry]:
        ids = {"follow_up": f.id, "response": f.response_id}
        yield self._entry(
            f.created_at, "follow_up.opened", "follow-up opened", f"f{f.id}o", **ids, due=_t(f.due_at)
        )
        steps: tuple[tuple[datetime | None, str, dict[str, Any]], ...] = (
            (f.acknowledged_at, "acknowledged", {"by": f.acknowledged_by}),
            (f.assigned_at, "assigned", {"assignee": f.assignee, "by": f.assigned_by}),
            (f.unacknowledged_escalated_at, "escalated", {"why": "nobody acknowledged it"}),
            (f.reminded_at, "reminded", {"assignee": f.assignee}),
            (f.escalated_at, "overdue", {}),
            (f.resolved_at, "resolved", {"by": f.resolved_by, "method": f.contact_method}),
        )
        for at, what, more in steps:
            if at is not None:
                note = {"note": self._free(f.outcome_note)} if what == "resolved" else {}
                yield self._entry(
                    at, f"follow_up.{what}", f"follow-up {what}", f"f{f.id}{what}", **ids, **more, **note
                )

    def _alert(self, a: SlackAlert) -> Iterator[Entry]:
        ids = {"alert": a.id, "kind": a.kind, "response": a.response_id, "channel": a.channel or None}
        yield self._entry(a.created_at, "alert.queued", "Slack alert queued", f"a{a.id}q", **ids)
        if a.posted_at:
            yield self._entry(a.posted_at, "alert.posted", "Slack alert posted", f"a{a.id}p", **ids, ts=a.ts)
        elif a.last_error:
            yield self._entry(
                a.updated_at,
                f"alert.{a.state}",
                f"Slack alert {a.state}",
                f"a{a.id}s",
                **ids,
                why=a.last_error,
            )

    def _consent(self, c: Consent) -> Entry:
        words = "opted out" if c.status == "opted_out" else "opted in"
        return self._entry(
            c.changed_at,
            "consent",
            words,
            f"c{c.id}{_t(c.changed_at)}",
            channel=c.channel,
            address=self._address(c.address),
            contact=self._who(c.contact_id) if c.contact_id else None,
            source=c.source,
        )

    def _audit(self, a: AuditEntry) -> Entry:
        details = (
            a.details if self.show else {k: v for k, v in a.details.items() if k not in ("note", "name")}
        )
        return self._entry(
            a.at,
            f"audit.{a.action}",
            f"audit: {a.action}",
            f"audit{a.id}",
            by=a.actor,
            entity=f"{a.entity_type}:{a.entity_id}" if a.entity_id else str(a.entity_type),
            **{k: v for k, v in details.items() if isinstance(v, (str, int, float, bool))},
        )


def _contact_id(wanted: str, session: Session) -> int:
    found = session.scalar(select(Contact.id).where(Contact.external_id == wanted))
    if found is None and wanted.isdigit():
        found = session.scalar(select(Contact.id).where(Contact.id == int(wanted)))
    if found is None:
        raise UnknownContact(f"no contact with the id {wanted!r}")
    return found


def _campaign_id(name: str, session: Session) -> int:
    found = session.scalar(select(Campaign.id).where(Campaign.name == name))
    if found is None:
        raise UnknownCampaign(f"no campaign named {name!r}")
    return found


def _t(at: datetime | None) -> str | None:
    return f"{at:%Y-%m-%d %H:%M}" if at else None


def _masked(value: Any) -> Any:
    """A field's value as `nps events --json` writes it: text masked like the line's text, numbers as they are."""
    return mask_text(value) if isinstance(value, str) else value


def _quoted(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or not text) else text
