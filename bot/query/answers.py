"""`/nps`: from the parsed command to the answer (Block Kit, plus a chart file for trends).

Quick answers (help, errors, lists) go back in the ack itself; queries over responses may take longer, so they
are acknowledged with "working..." and answered through response_url (see bot.app).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from bot.chart_blocks import alt_text
from bot.chart_links import TrendChart
from bot.mrkdwn import customer_text, cut, escape, verbatim
from bot.query import formatting
from bot.query.charts import trend_png
from bot.query.grammar import (
    CampaignControl,
    CampaignsQuery,
    CommentsQuery,
    CompareQuery,
    ContactQuery,
    FollowupsQuery,
    HelpQuery,
    Query,
    ScoreQuery,
    TrendQuery,
)
from bot.query.help import HELP_TEXT
from campaigns.definitions.store import set_status, summaries
from campaigns.privacy import mask_email, mask_phone, mask_text
from campaigns.scores import queries
from campaigns.scores.nps import Benchmark
from storage.audit import record_audit
from storage.enums import AuditAction, AuditEntity, CampaignStatus, FollowUpStatus
from storage.tables import Campaign, Contact, FollowUp, Response

Block = dict[str, Any]

# Queries that read many responses: acknowledged first, answered through response_url.
SLOW = (ScoreQuery, TrendQuery, CompareQuery, CommentsQuery)


@dataclass
class Answer:
    text: str
    blocks: list[Block] = field(default_factory=list)
    chart: Callable[[], bytes] | None = None  # draws the PNG to upload with files_upload_v2, when it is
    chart_title: str = ""
    # The same chart as a signed link may name it (None: it filters on customers' data), and in words.
    trend: TrendChart | None = None
    chart_alt: str = ""


@dataclass(frozen=True)
class Asker:
    user_id: str
    is_admin: bool
    sees_personal_data: bool = False  # customers' names and contact details (bot.permissions)
    personal_data_holders: str = "the responders"  # who may see them, for the answer to say


def is_slow(query: Query) -> bool:
    return isinstance(query, SLOW)


def shows_personal_data(query: Query) -> bool:
    """The answer differs for those who may see personal data (`bot.permissions`): customers' names, contact
    details written in comments or stored as property values, and filters that single a customer out."""
    return isinstance(query, (ContactQuery, CommentsQuery, FollowupsQuery, CompareQuery)) or _singles_out(
        query
    )


def _singles_out(query: Query) -> bool:
    """A property filter on a phone number or an email address (`work_email=ana@example.org`) names one
    customer, however anonymous the answer to it is."""
    filters = getattr(query, "filters", None)
    return filters is not None and any(mask_text(value) != value for _, value in filters.properties)


def answer(
    query: Query,
    asker: Asker,
    *,
    session: Session,
    now: datetime,
    tz: ZoneInfo,
    benchmark: Benchmark | None = None,
) -> Answer:
    if not asker.sees_personal_data and _singles_out(query):
        text = (
            ":no_entry: A filter on a phone number or email address singles a customer out, which only "
            f"{asker.personal_data_holders} may do. Filter on other properties, or ask one of them."
        )
        return Answer(text, [_section(text)])
    if isinstance(query, HelpQuery):
        return Answer("How to use /nps", formatting.help_blocks(HELP_TEXT))
    if isinstance(query, ScoreQuery):
        report = queries.score(session=session, period=query.period, filters=query.filters)
        label = formatting.describe_period(query.period)
        return Answer(
            f"NPS {label}",
            formatting.score_blocks(report, label, formatting.describe_filters(query.filters), benchmark),
        )
    if isinstance(query, TrendQuery):
        points = queries.trend(
            session=session, period=query.period, filters=query.filters, granularity=query.granularity, tz=tz
        )
        title = f"NPS {query.granularity} trend, {formatting.describe_period(query.period)}"
        return Answer(
            formatting.trend_text(points, title, tz=tz),
            formatting.trend_blocks(points, title, tz=tz),
            functools.partial(trend_png, points, title, tz=tz),  # drawn only if it is uploaded
            title,
            TrendChart.of(query.granularity, query.period, query.filters),
            alt_text(points, query.granularity),
        )
    if isinstance(query, CompareQuery):
        segments = queries.compare(
            session=session, property=query.property, period=query.period, filters=query.filters
        )
        if (
            not asker.sees_personal_data
        ):  # property values are customers' data: a CSV import keeps every column
            segments = [dataclasses.replace(s, value=mask_text(s.value)) for s in segments]
        label = formatting.describe_period(query.period)
        return Answer(
            f"NPS by {query.property}",
            formatting.compare_blocks(
                segments, query.property, label, formatting.describe_filters(query.filters)
            ),
        )
    if isinstance(query, CommentsQuery):
        page = queries.comments(
            session=session,
            category=query.category,
            keyword=query.keyword,
            period=query.period,
            filters=query.filters,
            page=query.page,
        )
        more = query.command(page=query.page + 1) if page.has_more else None
        if not asker.sees_personal_data:
            page = dataclasses.replace(
                page,
                items=[
                    dataclasses.replace(item, contact_name=None, comment=mask_text(item.comment))
                    for item in page.items
                ],
            )
        blocks = formatting.comments_blocks(
            page,
            formatting.describe_period(query.period),
            formatting.describe_filters(query.filters),
            next_command=more,
            tz=tz,
        )
        if not asker.sees_personal_data and page.items:
            blocks.append(_names_hidden(asker))
        return Answer("Comments", blocks)
    if isinstance(query, FollowupsQuery):
        return _followups(query, asker, session=session, now=now)
    if isinstance(query, ContactQuery):
        if not asker.sees_personal_data:
            return _contact_refused(asker, session=session)
        return _contact(query, session=session)
    if isinstance(query, CampaignsQuery):
        return _campaigns(session=session)
    if isinstance(query, CampaignControl):
        return _control(query, asker, session=session)
    raise AssertionError(f"unhandled query {query!r}")


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}


def _customer_section(text: str) -> Block:
    """A section with customers' text in it: verbatim, and built within Slack's limit, so never clipped here."""
    return {"type": "section", "text": verbatim(text)}


def _followups(query: FollowupsQuery, asker: Asker, *, session: Session, now: datetime) -> Answer:
    select_open = (
        select(FollowUp, Response, Contact)
        .join(Response, FollowUp.response_id == Response.id)
        # Without the right to see names, no contact is even loaded.
        .outerjoin(Contact, Response.contact_id == Contact.id if asker.sees_personal_data else false())
        .where(FollowUp.status != FollowUpStatus.RESOLVED)
    )
    if query.scope == "mine":
        select_open = select_open.where(FollowUp.assignee == asker.user_id)
    elif query.scope == "overdue":
        select_open = select_open.where(FollowUp.due_at < now)
    rows = session.execute(select_open.order_by(FollowUp.due_at).limit(20)).all()
    if not rows:
        return Answer(
            f"No {query.scope} follow-ups. :tada:", [_section(f"No {query.scope} follow-ups. :tada:")]
        )
    # 20 lines of at most 80 + 70 characters: within a section's 3,000
    lines = [
        f"• *{_name(contact)}* {response.score}/10 — due {follow_up.due_at:%Y-%m-%d %H:%M} UTC"
        + (" *overdue*" if follow_up.due_at < now else "")
        + (f", <@{follow_up.assignee}>" if follow_up.assignee else ", unassigned")
        for follow_up, response, contact in rows
    ]
    text = f"*{len(rows)} {query.scope} follow-up(s)*\n" + "\n".join(lines)
    if not asker.sees_personal_data:
        return Answer(text, [_customer_section(text), _names_hidden(asker)])
    return Answer(text, [_customer_section(text)])


def _name(contact: Contact | None) -> str:
    return customer_text(contact.name or contact.external_id, 80) if contact else "?"


def _names_hidden(asker: Asker) -> Block:
    note = f"Customers' names are hidden: only {asker.personal_data_holders} may see them."
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}


def _contact_refused(asker: Asker, *, session: Session) -> Answer:
    """Nothing about the contact, not even whether one matches; what was looked up is not kept either (it may
    be a phone number or an email address)."""
    record_audit(
        session=session,
        actor=f"slack:{asker.user_id}",
        action=AuditAction.CONTACT_LOOKUP_REFUSED,
        entity_type=AuditEntity.CONTACT,
    )
    text = (
        f":no_entry: `/nps contact` shows personal data, which only {asker.personal_data_holders} may see. "
        "Scores and anonymous comments are open to everyone (`/nps comments`)."
    )
    return Answer(text, [_section(text)])


def _contact(query: ContactQuery, *, session: Session) -> Answer:
    key = query.key.strip()
    contact = session.scalar(
        select(Contact)
        .where(or_(Contact.external_id == key, Contact.phone == key, Contact.email == key.lower()))
        .limit(1)
    )
    if contact is None:
        text = f"No contact matches `{escape(cut(key, 200))}`."
        return Answer(text, [_section(text)])
    responses = session.scalars(
        select(Response)
        .where(Response.contact_id == contact.id)
        .order_by(Response.answered_at.desc())
        .limit(10)
    ).all()
    reach = " · ".join(
        customer_text(x, 60)
        for x in (
            mask_phone(contact.phone) if contact.phone else "",
            mask_email(contact.email) if contact.email else "",
        )
        if x
    )
    # at most 100 + 130 + 100 characters, then 10 answers of 200 + 30: within a section's 3,000
    name = customer_text(contact.name or contact.external_id, 100)
    lines = [f"*{name}* ({reach}) — id `{customer_text(contact.external_id, 100)}`"]
    lines += [
        f"• {r.answered_at:%Y-%m-%d}: {r.score}/10"
        + (f" — “{customer_text(r.comment, 200)}”" if r.comment else "")
        for r in responses
    ] or ["No answers yet."]
    text = "\n".join(lines)
    return Answer(text, [_customer_section(text)])


def _campaigns(*, session: Session) -> Answer:
    rows = summaries(session=session)
    if not rows:
        return Answer("No campaigns yet.", [_section("No campaigns yet.")])
    lines = [
        f"• *{row.name}* ({row.kind}{', ' + row.event if row.event else ''}) — {row.status.value}; "
        f"{row.counts.get('planned', 0)} planned, {row.responses} responses"
        for row in rows
    ]
    text = "\n".join(lines)
    return Answer(text, [_section(text)])


CAMPAIGN_CONTROL_ACTIONS = {
    "pause": AuditAction.CAMPAIGN_PAUSED,
    "resume": AuditAction.CAMPAIGN_RESUMED,
    "run": AuditAction.CAMPAIGN_RUN,
}


def _control(query: CampaignControl, asker: Asker, *, session: Session) -> Answer:
    actor = f"slack:{asker.user_id}"
    if not asker.is_admin:
        record_audit(
            session=session,
            actor=actor,
            action=AuditAction.CAMPAIGN_CONTROL_REFUSED,
            entity_type=AuditEntity.CAMPAIGN,
            entity_id=query.name,
            requested=query.action,
        )
        return Answer(
            "Only admins (SLACK_ADMIN_USERS) can control campaigns.",
            [_section(":no_entry: Only admins (SLACK_ADMIN_USERS) can control campaigns.")],
        )
    campaign = session.scalar(select(Campaign).where(Campaign.name == query.name))
    if campaign is None:
        return Answer(
            f"No campaign named {escape(query.name)}.",
            [_section(f"No campaign named `{escape(query.name)}`; `/nps campaigns` lists them.")],
        )
    done = CAMPAIGN_CONTROL_ACTIONS[query.action]
    if done is AuditAction.CAMPAIGN_RUN:
        campaign.last_planned_at = None  # the planner rescans it at its next tick
        text = f"Campaign *{query.name}* will be planned at the next tick."
    else:
        status = CampaignStatus.PAUSED if done is AuditAction.CAMPAIGN_PAUSED else CampaignStatus.ACTIVE
        set_status(query.name, status, session=session)
        text = f"Campaign *{query.name}* {status.value}."
    record_audit(
        session=session,
        actor=actor,
        action=done,
        entity_type=AuditEntity.CAMPAIGN,
        entity_id=query.name,
    )
    return Answer(text, [_section(text)])


__all__ = ["Answer", "Asker", "answer", "is_slow", "shows_personal_data"]
