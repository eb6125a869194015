"""Attacks on the Slack permission model and on how customers' text reaches Slack (issue 11, cases 6 and 7).

Each test is a way in that the permission model or the escaping does not close yet: personal data that reaches
people who may not see it, listeners that miss Slack's 3-second ack or fail with a traceback, customer text that
changes what the rest of a line says, and a membership that outlives its minute. Requests are signed like Slack
signs them and Slack is the fake Web API; nothing of ours is replaced.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from slack_sdk import WebClient
from sqlalchemy import select

from bot import ids
from bot.permissions import Directory
from bot.poster import AlertPoster
from campaigns.clock import ManualClock
from campaigns.followups.deadlines import check_follow_ups
from campaigns.followups.opening import on_score
from campaigns.scores.nps import categorize
from service.container import Container, build_container
from service.web.app import create_app
from storage.enums import AlertKind, AuditAction, Channel, FollowUpStatus
from storage.tables import AuditEntry, Campaign, Contact, FollowUp, Response, SlackAlert
from tests.fixtures.engine import add_contacts, apply_yaml
from tests.fixtures.slack import AGENT, ALERTS, KUDOS, MANAGER, OUTSIDER, post_to_slack_events
from tests.standins.fake_slack import FakeSlack, dm_channel_id
from tests.standins.slack_signing import block_actions_body, slash_command_body, view_submission_body

T = TypeVar("T")

VIP_CHANNEL = "C0VIPCASES"  # a campaign's own alert channel, with other members than SLACK_ALERT_CHANNEL
GUEST, GUEST_TEAM = "U0GUEST", "T0GUEST"  # someone from a connected organisation (Slack Connect)
RESOLVED_VALUES = {
    "outcome": {"note": {"type": "plain_text_input", "value": "Called her, refund issued"}},
    "method": {"choice": {"type": "static_select", "selected_option": {"value": "phone call"}}},
}
TOO_LARGE = str(2**63)  # past SQLite's 64-bit integers (PostgreSQL's integer ids end at 2**31 - 1)
# Explicit bidirectional formatting: embeddings and overrides (closed by PDF), isolates (closed by PDI).
BIDI_OPEN = {"\u202a", "\u202b", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068"}
BIDI_CLOSE = {"\u202c", "\u2069"}


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


# --- helpers --------------------------------------------------------------------------------------------------


def eventually(check: Callable[[], T], timeout: float = 10.0) -> T:
    """`check()` once it is truthy (a listener that runs after its ack finishes on its own thread)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still {result!r} after {timeout} s")
        time.sleep(0.02)


def customer(external_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"external_id": external_id, "name": name, "phone": "+4915112345678", **fields}


def answered(
    engine: Container,
    external_id: str,
    score: int,
    comment: str | None = None,
    *,
    campaign: str | None = None,
    at: datetime | None = None,
) -> int:
    """An answer of the contact `external_id`, stored as a reply stores it (follow-up and alert opened with it);
    the response's id."""
    with engine.db.transaction() as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == external_id)).one()
        campaign_id = (
            session.scalars(select(Campaign.id).where(Campaign.name == campaign)).one() if campaign else None
        )
        response = Response(
            contact_id=contact.id,
            campaign_id=campaign_id,
            channel=Channel.SMS,
            score=score,
            category=categorize(score).value,
            comment=comment,
            contact_snapshot=dict(contact.properties),
            answered_at=at or engine.clock.now(),
        )
        session.add(response)
        session.flush()
        on_score(response, now=at or engine.clock.now(), session=session)
        return response.id


def later(engine: Container, **delta: float) -> None:
    clock = engine.clock
    assert isinstance(clock, ManualClock)
    clock.advance(**delta)


@dataclass(frozen=True)
class Alert:
    """A detractor alert as Slack shows it: its follow-up, and the message the buttons are in."""

    follow_up_id: int
    channel: str
    ts: str

    def click(self, action_id: str, user: str, *, about: str | None = None, **fields: Any) -> str:
        """The signed body of a click on this alert (about this alert's follow-up unless `about` is given)."""
        follow_up = str(self.follow_up_id) if about is None else about
        if action_id == ids.ASSIGN:
            fields.setdefault("block_id", ids.follow_up_block(follow_up))
        else:
            fields.setdefault("value", follow_up)
        return block_actions_body(
            action_id, user_id=user, channel_id=self.channel, message_ts=self.ts, **fields
        )

    def resolve_submission(self, user: str, *, about: str | None = None) -> str:
        follow_up = str(self.follow_up_id) if about is None else about
        return view_submission_body(
            ids.RESOLVE_VIEW,
            RESOLVED_VALUES,
            private_metadata=f"{follow_up}|{self.channel}|{self.ts}",
            user_id=user,
        )


def posted_alert(engine: Container, poster: AlertPoster) -> Alert:
    """Dana's detractor alert, posted to the alert channel."""
    add_contacts(engine, [customer("dana", "Dana Detractor")])
    answered(engine, "dana", 3, "nobody called back", at=engine.clock.now() - timedelta(minutes=11))
    assert poster.run() == 1
    return the_alert(engine)


def the_alert(engine: Container) -> Alert:
    """The one detractor alert, as Slack shows it."""
    with engine.db.transaction() as session:
        row = session.execute(
            select(FollowUp.id, SlackAlert.channel, SlackAlert.ts)
            .join(SlackAlert, SlackAlert.response_id == FollowUp.response_id)
            .where(SlackAlert.kind == AlertKind.DETRACTOR)
        ).one()
    return Alert(*row)


def follow_up(engine: Container, follow_up_id: int) -> FollowUp:
    with engine.db.transaction() as session:
        row = session.get(FollowUp, follow_up_id)
        assert row is not None
        session.expunge(row)
        return row


def audited(engine: Container, action: AuditAction) -> list[AuditEntry]:
    with engine.db.transaction() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def command(app: TestClient, fake_slack: FakeSlack, text: str, user: str) -> Any:
    body = slash_command_body(text=text, user_id=user, response_url=fake_slack.response_url(user))
    return post_to_slack_events(app, body)


def later_answer(fake_slack: FakeSlack, n: int = 1) -> str:
    answers = fake_slack.wait_for("response_url", n, timeout=10, successful=True)
    return json.dumps(answers[n - 1], ensure_ascii=False)


def everything_posted_to(fake_slack: FakeSlack, channel: str) -> str:
    """Every message (text and blocks) the app posted or edited in `channel`."""
    sent = [*fake_slack.calls("chat.postMessage"), *fake_slack.calls("chat.update")]
    return json.dumps([m for m in sent if m.get("channel") == channel], ensure_ascii=False)


def listener_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors with a traceback that escaped a listener (Bolt logs them as "Failed to run listener function")."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info is not None]


# --- personal data reaching people who may not see it ---------------------------------------------------------


VIP_CAMPAIGN = f"""
campaigns:
  - name: vip
    kind: relationship
    interval_days: 90
    channels: [sms]
    brand: Acme
    slack_channel: {VIP_CHANNEL}
"""


def test_an_escalation_stays_in_the_channel_of_the_alert_it_escalates(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    """A campaign whose alerts go to their own channel keeps its customers there: the members of
    SLACK_ALERT_CHANNEL are not its responders (they may not act on its follow-ups), so the unacknowledged and
    overdue escalations must not show them the customer's name, comment and contact details either."""
    fake_slack.set_channel_members(VIP_CHANNEL, [AGENT])
    apply_yaml(engine, VIP_CAMPAIGN)
    add_contacts(engine, [customer("vera", "Vera Vip", properties={"plan": "enterprise"})])
    answered(engine, "vera", 1, "cancelling our contract", campaign="vip")
    later(engine, minutes=11)
    poster.run()
    [alert] = fake_slack.successful("chat.postMessage")
    assert alert["channel"] == VIP_CHANNEL and "Vera Vip" in json.dumps(alert)

    # The manager (in SLACK_ALERT_CHANNEL, not in the VIP channel) may not act on it ...
    vip = the_alert(engine)
    post_to_slack_events(app, vip.click(ids.ACK, MANAGER))
    [refusal] = fake_slack.wait_for("chat.postEphemeral", 1, successful=True)
    assert "Only members of" in refusal["text"]

    # ... and nobody acknowledged it in 4 hours, nor resolved it in 48: both escalations are due.
    later(engine, hours=5)
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 1
    later(engine, hours=44)
    assert check_follow_ups(engine.db, now=engine.clock.now()) == 1
    poster.run()
    shown_to_alert_channel = everything_posted_to(fake_slack, ALERTS)
    for personal in ("Vera Vip", "cancelling our contract", "enterprise", "5678"):
        assert personal not in shown_to_alert_channel, personal
    escalations = [m for m in fake_slack.successful("chat.postMessage") if "rotating_light" in json.dumps(m)]
    assert (
        len(escalations) == 2
    )  # still escalated: where its responders are (VIP_CHANNEL), or without details


@pytest.fixture
def admins_only(engine: Container) -> Iterator[tuple[AlertPoster, TestClient]]:
    """The poster and the app of a process with SLACK_PERSONAL_DATA=admins, on the same database and Slack."""
    settings = dataclasses.replace(engine.settings, slack_personal_data="admins")
    container = build_container(settings, db=engine.db, clock=engine.clock)
    assert container.slack is not None
    with TestClient(create_app(container)) as client:
        yield container.slack.poster, client


def test_personal_data_for_admins_only_keeps_names_out_of_alerts_kudos_and_dms(
    engine: Container, fake_slack: FakeSlack, admins_only: tuple[AlertPoster, TestClient]
) -> None:
    """README: "SLACK_PERSONAL_DATA=admins keeps names and contact details to the admins". `/nps contact` obeys
    it, but every alert still shows the whole alert channel (and the kudos channel, and the assignee's DM) the
    customer's name and masked phone and email."""
    poster, client = admins_only
    add_contacts(
        engine,
        [
            customer("dana", "Dana Detractor", email="dana.d@example.org"),
            customer("paul", "Paul Promoter", email="paul.p@example.org"),
        ],
    )
    answered(engine, "dana", 2, "no one called")
    answered(engine, "paul", 10, "great")
    later(engine, minutes=11)
    poster.run()

    # `/nps contact` is refused to the manager, as documented ...
    refused = command(client, fake_slack, "contact dana", MANAGER).json()
    assert "Dana" not in json.dumps(refused)

    # ... then the manager assigns the case to the agent, who gets a DM.
    alert = the_alert(engine)
    post_to_slack_events(client, alert.click(ids.ASSIGN, MANAGER, selected_user=AGENT))
    fake_slack.wait_for("chat.postMessage", 3, successful=True)
    poster.run()  # waits for the run the click started
    shown = {
        channel: everything_posted_to(fake_slack, channel)
        for channel in (ALERTS, KUDOS, dm_channel_id(AGENT))
    }
    assert "Detractor" in shown[ALERTS] and "great" in shown[KUDOS] and shown[dm_channel_id(AGENT)] != "[]"
    for channel, text in shown.items():
        for personal in ("Dana Detractor", "Paul Promoter", "5678", "example.org"):
            assert personal not in text, (channel, personal)


def test_a_removed_assignee_is_not_sent_the_customers_details_any_more(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    """The agent was assigned while a member of the alert channel, then left it (or was removed). A day and a
    half later, long past the minute memberships are remembered, the reminder DM still brings them the
    customer's name, comment and contact details; they may no longer act on the case (or see `/nps contact`)."""
    alert = posted_alert(engine, poster)
    post_to_slack_events(app, alert.click(ids.ASSIGN, MANAGER, selected_user=AGENT))
    fake_slack.wait_for("chat.postMessage", 2, successful=True)  # the alert, then the assignment DM
    fake_slack.set_channel_members(ALERTS, [MANAGER])  # the agent is no longer a responder
    later(engine, hours=37)  # 11 of 48 hours left: the reminder is due
    check_follow_ups(engine.db, now=engine.clock.now())
    poster.run()
    refused = command(app, fake_slack, "contact dana", AGENT).json()
    assert "Dana" not in json.dumps(refused)  # the agent may not look the customer up ...
    reminders = [
        m
        for m in fake_slack.successful("chat.postMessage")
        if m["channel"] == dm_channel_id(AGENT) and "Reminder" in json.dumps(m)
    ]
    for reminder in reminders:  # ... nor be reminded of them by name
        shown = json.dumps(reminder, ensure_ascii=False)
        assert "Dana Detractor" not in shown and "nobody called back" not in shown, shown


def test_a_slack_connect_guest_cannot_be_assigned_a_case_they_may_not_act_on(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    """A shared (Slack Connect) alert channel lists the other organisation's members too. README: "A case can
    be assigned only to someone who may act on it", yet a guest, whose own clicks are refused as foreign, is
    assignable, and the assignment DM carries the customer's details into the other organisation."""
    fake_slack.set_channel_members(ALERTS, [MANAGER, AGENT, GUEST])
    fake_slack.add_user(GUEST, team_id=GUEST_TEAM, is_stranger=True)
    alert = posted_alert(engine, poster)

    # The guest's own click is refused before any listener runs ...
    post_to_slack_events(app, alert.click(ids.ACK, GUEST, team_id=GUEST_TEAM))
    assert audited(engine, AuditAction.SLACK_REQUEST_REFUSED)

    # ... but a manager can give them the case.
    post_to_slack_events(app, alert.click(ids.ASSIGN, MANAGER, selected_user=GUEST))
    eventually(
        lambda: fake_slack.count("chat.postEphemeral") or follow_up(engine, alert.follow_up_id).assignee
    )
    if follow_up(engine, alert.follow_up_id).assignee:
        fake_slack.wait_for("chat.update", 1, successful=True)
    poster.run()  # waits for the run the click started
    assert follow_up(engine, alert.follow_up_id).assignee is None
    assert everything_posted_to(fake_slack, dm_channel_id(GUEST)) == "[]"


def test_compare_shows_no_contact_details_kept_in_properties_to_someone_outside_the_alert_channel(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    """Contacts' properties are customers' data: a CSV import keeps every extra column (`work_email`,
    `mobile`, `account_owner` ...). `/nps compare PROPERTY` lists the stored values to anyone in the workspace,
    and a property filter singles one customer out of the "anonymous" comments."""
    add_contacts(
        engine,
        [
            customer("c1", "Ana Lima", properties={"work_email": "ana.lima@acme.example"}),
            customer("c2", "Bo Berg", properties={"work_email": "bo.berg@acme.example"}),
        ],
    )
    yesterday = engine.clock.now() - timedelta(days=1)
    answered(engine, "c1", 2, "the invoice was wrong again", at=yesterday)
    answered(engine, "c2", 9, "fine", at=yesterday)

    command(app, fake_slack, "compare work_email", OUTSIDER)
    assert "ana.lima@acme.example" not in later_answer(fake_slack, 1)
    command(app, fake_slack, "comments work_email=ana.lima@acme.example", OUTSIDER)
    assert "the invoice was wrong again" not in later_answer(fake_slack, 2)


def test_anonymous_comments_do_not_show_the_phone_numbers_and_emails_written_in_them(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    """`/nps comments` hides the customer's name from someone outside the alert channel, but customers often
    write how to reach them into the comment itself: the whole phone number and email address are shown."""
    add_contacts(engine, [customer("c1", "Ana Lima")])
    comment = "Call me back on +49 151 12345678 or at ana.lima@acme.example, nobody ever does"
    answered(engine, "c1", 2, comment, at=engine.clock.now() - timedelta(days=1))
    command(app, fake_slack, "comments detractors", OUTSIDER)
    shown = later_answer(fake_slack)
    assert "nobody ever does" in shown and "Ana Lima" not in shown
    assert "12345678" not in shown and "ana.lima@acme.example" not in shown, shown


@pytest.mark.parametrize("looked_up", ["+4915112345678", "ana.lima@acme.example"])
def test_a_refused_request_from_another_workspace_keeps_no_phone_or_email_in_the_audit_log(
    app: TestClient, engine: Container, fake_slack: FakeSlack, looked_up: str
) -> None:
    """README: refusals are audited "with what was asked and why; never what was looked up". The workspace
    check audits a command as its first word, and `/nps +4915112345678` (or an email) is all first word."""
    body = slash_command_body(text=f"{looked_up} last 30d", user_id=MANAGER, team_id="T0OTHER")
    assert post_to_slack_events(app, body).status_code == 200
    [entry] = audited(engine, AuditAction.SLACK_REQUEST_REFUSED)
    assert looked_up not in json.dumps(entry.details), entry.details


# --- Slack's 3-second ack, and listeners that fail --------------------------------------------------------------


def test_nps_contact_is_acknowledged_within_three_seconds_when_slack_is_slow_to_list_members(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    """`/nps contact` and `/nps followups` are answered in the ack, after asking Slack who is in the alert
    channel (conversations.members, page by page, 10 s timeout each). A slow answer, or a big channel, and
    Slack's 3 seconds are gone: the asker sees "operation_timeout" (Bolt gives up and answers 404)."""
    add_contacts(engine, [customer("c1", "Ana Lima")])
    fake_slack.set_latency("conversations.members", 4)
    started = time.monotonic()
    response = command(app, fake_slack, "contact c1", OUTSIDER)
    elapsed = time.monotonic() - started
    eventually(lambda: audited(engine, AuditAction.CONTACT_LOOKUP_REFUSED))  # the listener has finished
    assert response.status_code == 200, response.text  # today: 404 from Bolt, which gave up after 3 s
    assert response.json().get("text"), response.text
    # A generous bound: acknowledging first takes milliseconds; today the answer waits for the 4-second lookup.
    assert elapsed < 3, elapsed


def test_the_resolve_modal_is_acknowledged_within_three_seconds_when_slack_is_slow_to_list_members(
    app: TestClient, engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    """The Resolve submission checks the submitter's membership before its ack. With a slow Slack the modal
    shows an error and stays open, yet the follow-up is resolved behind it; submitting again changes nothing."""
    alert = posted_alert(engine, poster)
    fake_slack.set_latency("conversations.members", 4)
    started = time.monotonic()
    response = post_to_slack_events(app, alert.resolve_submission(MANAGER))
    elapsed = time.monotonic() - started
    eventually(lambda: follow_up(engine, alert.follow_up_id).status is FollowUpStatus.RESOLVED)
    fake_slack.wait_for("chat.update", 1, successful=True)
    poster.run()  # waits for the run the submission started
    assert response.status_code == 200, response.text  # today: 404 from Bolt, which gave up after 3 s
    assert elapsed < 3, elapsed  # generous: the ack itself needs no Slack call


@pytest.mark.parametrize("what", ["acknowledge", "assign", "resolve button", "resolve submission"])
def test_a_follow_up_id_too_large_for_the_database_is_refused_politely(
    app: TestClient,
    engine: Container,
    fake_slack: FakeSlack,
    poster: AlertPoster,
    caplog: pytest.LogCaptureFixture,
    what: str,
) -> None:
    """A button value, block id or private_metadata naming follow-up 2**63 overflows the database's integer
    (SQLite's OverflowError, PostgreSQL's "integer out of range", there from 2**31 on): the modal submission
    gets a 500, a click a 404 after 3 seconds (the listener fails just after its ack, and Bolt then forgets the
    ack), each with a traceback in the log. An id that names no follow-up should be refused like any other
    wrong button."""
    alert = posted_alert(engine, poster)
    body = {
        "acknowledge": lambda: alert.click(ids.ACK, MANAGER, about=TOO_LARGE),
        "assign": lambda: alert.click(ids.ASSIGN, MANAGER, about=TOO_LARGE, selected_user=AGENT),
        "resolve button": lambda: alert.click(ids.RESOLVE, MANAGER, about=TOO_LARGE),
        "resolve submission": lambda: alert.resolve_submission(MANAGER, about=TOO_LARGE),
    }[what]()
    response = post_to_slack_events(app, body)
    assert response.status_code == 200, response.text
    if what == "resolve submission":
        assert "does not belong to this alert" in response.json()["errors"][ids.OUTCOME_BLOCK]
    else:
        [refusal] = fake_slack.wait_for("chat.postEphemeral", 1, successful=True)
        assert "does not belong to this alert" in refusal["text"]
    assert listener_failures(caplog) == []
    assert follow_up(engine, alert.follow_up_id).status is FollowUpStatus.OPEN


def test_the_resolve_button_says_so_when_the_modal_cannot_open(
    app: TestClient,
    engine: Container,
    fake_slack: FakeSlack,
    poster: AlertPoster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A click's trigger_id lasts 3 seconds, and the membership check runs before views.open: a slow lookup
    (or any refusal of views.open) leaves the click without a modal, without a word to the user, and with a
    SlackApiError traceback in the log."""
    alert = posted_alert(engine, poster)
    fake_slack.fail_next("views.open", status=200, body={"ok": False, "error": "expired_trigger_id"})
    assert post_to_slack_events(app, alert.click(ids.RESOLVE, MANAGER)).status_code == 200
    fake_slack.wait_for("views.open", 1)
    [answer] = fake_slack.wait_for("chat.postEphemeral", 1, timeout=5, successful=True)
    assert answer["user"] == MANAGER and "try again" in answer["text"].lower()
    assert listener_failures(caplog) == []


# --- memberships ---------------------------------------------------------------------------------------------


def test_a_clock_stepped_back_does_not_keep_a_removed_member_for_longer_than_a_minute(
    fake_slack: FakeSlack,
) -> None:
    """Memberships are kept for a minute by wall-clock time. When the clock steps back (an NTP correction, a
    VM resumed), `now - loaded_at` is negative and the stale list is trusted until the clock has caught up
    again: here an hour, in which someone removed from the channel still acts on follow-ups."""
    clock = ManualClock(datetime(2026, 5, 14, 12, 0, tzinfo=UTC))
    directory = Directory(WebClient(token="xoxb-test", base_url=fake_slack.url, retry_handlers=[]), clock)
    fake_slack.set_channel_members(ALERTS, [MANAGER, AGENT])
    assert AGENT in directory.channel_members(ALERTS)
    fake_slack.set_channel_members(ALERTS, [MANAGER])  # the agent is removed
    clock.set(datetime(2026, 5, 14, 11, 0, tzinfo=UTC))  # the clock steps back an hour
    clock.advance(minutes=2)  # two real minutes after the removal
    assert AGENT not in directory.channel_members(ALERTS)


# --- customer text that changes the rest of the line --------------------------------------------------------------


def unclosed_bidi_before(text: str, ours: str) -> int:
    """How many explicit bidi embeddings, overrides or isolates are still open where `ours` (our own text after
    a customer's) begins, on its line: each turns our text around or moves it."""
    at = text.index(ours)
    line_start = text.rfind("\n", 0, at) + 1
    depth = 0
    for char in text[line_start:at]:
        if char in BIDI_OPEN:
            depth += 1
        elif char in BIDI_CLOSE and depth:
            depth -= 1
    return depth


@pytest.mark.parametrize(
    "name",
    ["Eve\n• *Big Account* 10/10 — due 2030-01-01 09:00 UTC, assigned", "\u202eEve"],
    ids=["line break", "right-to-left override"],
)
def test_a_contacts_name_cannot_add_lines_to_nps_followups_or_turn_the_rest_of_its_line_around(
    app: TestClient, engine: Container, fake_slack: FakeSlack, name: str
) -> None:
    """Names may hold line breaks (only external ids are checked for control characters) and bidi controls.
    In `/nps followups` a name with a line break adds a follow-up line of its choosing, and a right-to-left
    override (U+202E) shows the score and due date after it reversed ("01/3" for 3/10)."""
    add_contacts(engine, [customer("eve", name)])
    answered(engine, "eve", 3)
    answer = command(app, fake_slack, "followups", MANAGER).json()
    [section] = [b["text"]["text"] for b in answer["blocks"] if b["type"] == "section"]
    assert len(section.splitlines()) == 2, section  # the header and the one follow-up
    assert unclosed_bidi_before(section, " 3/10") == 0, section


def test_a_comment_cannot_add_an_answer_to_nps_contact(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    """`/nps contact` lists the last answers one per line, each comment inline: a comment with a line break
    adds a line that reads like another answer."""
    add_contacts(engine, [customer("c1", "Ana Lima")])
    answered(engine, "c1", 2, "ok”\n• 2026-05-01: 10/10 — “best service ever")
    answer = command(app, fake_slack, "contact c1", MANAGER).json()
    [section] = [b["text"]["text"] for b in answer["blocks"] if b["type"] == "section"]
    answers = [line for line in section.splitlines() if line.startswith("• ")]
    assert len(answers) == 1, section


def test_a_contacts_name_cannot_turn_the_alert_notification_around(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    """The notification (the message's `text`) puts the comment after the name; a name ending in a
    right-to-left override shows the comment, and anything after it, reversed."""
    add_contacts(engine, [customer("rlo", "Rita \u202e")])
    answered(engine, "rlo", 3, "please call me")
    later(engine, minutes=11)
    poster.run()
    [alert] = fake_slack.successful("chat.postMessage")
    assert unclosed_bidi_before(alert["text"], "please call me") == 0, alert["text"]
    [contact_field] = [f["text"] for f in alert["blocks"][2]["fields"] if f["text"].startswith("*Contact*")]
    assert unclosed_bidi_before(contact_field, " (") == 0, contact_field  # the masked phone after the name
