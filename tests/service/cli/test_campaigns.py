"""`nps campaigns apply|list|pause|resume` and `nps contacts why`, as a user runs them."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from service.cli import cli
from service.container import Container
from storage.db import Database
from storage.enums import CampaignStatus
from storage.tables import AuditEntry, Campaign
from tests.fixtures.engine import add_contacts, plan

FILE = """
campaigns:
  - name: quarterly-pulse
    kind: relationship
    interval_days: 90
    first_after_days: 30
    audience: {plan: [pro, enterprise], region: EU}
    channels: [sms, email]
    send_window: {days: [mon, tue, wed, thu], start: "09:00", end: "12:00"}
    remind_after: 3d
    expires_after: 14d
    sample_rate: 1.0
    locale: en
    messages:
      en: {sms: "Hi {{ first_name }}, how likely are you to recommend Acme to a friend? Reply 0-10. Reply STOP to opt out."}
  - name: post-delivery
    kind: transactional
    event: order_delivered
    delay: 14d
    dedupe_days: 30
    min_days_between_surveys: 30
    channels: [email, sms]
"""


def nps(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--env-file", os.devnull, *args], env={"DATABASE_URL": database_url})


def test_apply_creates_then_updates_by_name(database_url: str, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text(FILE)
    first = nps(database_url, "campaigns", "apply", str(path))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == ["quarterly-pulse: created", "post-delivery: created"]
    assert nps(database_url, "campaigns", "apply", str(path)).stdout.splitlines() == [
        "quarterly-pulse: unchanged",
        "post-delivery: unchanged",
    ]
    path.write_text(FILE.replace("interval_days: 90", "interval_days: 60"))
    assert "quarterly-pulse: updated" in nps(database_url, "campaigns", "apply", str(path)).stdout
    with db.transaction() as session:
        stored = session.scalars(select(Campaign).where(Campaign.name == "quarterly-pulse")).one()
        assert stored.definition["interval_days"] == 60
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["campaign.created", "campaign.created", "campaign.updated"]


def test_an_invalid_file_names_each_field_and_changes_nothing(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text(
        FILE.replace("interval_days: 90", "intervall_days: 90").replace('start: "09:00"', 'start: "9am"')
    )
    result = nps(database_url, "campaigns", "apply", str(path))
    assert result.exit_code == 1
    assert "intervall_days" in result.stderr and "did you mean 'interval_days'" in result.stderr
    assert "send_window.start" in result.stderr
    assert "Traceback" not in result.stderr
    with db.transaction() as session:
        assert session.scalars(select(Campaign)).all() == []


def test_a_template_over_the_limits_is_refused_with_its_field_and_nothing_is_stored(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    loop = "{% for i in range(1000) %}{% for j in range(1000) %}{{ first_name * 3 }}{% endfor %}{% endfor %}"
    path = tmp_path / "campaigns.yaml"
    path.write_text(
        FILE.replace("Reply 0-10.", "Reply 0-10. " + loop).replace("locale: en", "locale: en\n    brand: A")
    )
    result = nps(database_url, "campaigns", "apply", str(path))
    assert result.exit_code == 1
    assert (
        "campaigns[0] (quarterly-pulse).messages.en.sms: the template writes more than 10,000 characters"
        in (result.stderr)
    )
    path.write_text(FILE.replace("Reply 0-10.", "Reply 0-10." + " " * 5000))
    result = nps(database_url, "campaigns", "apply", str(path))
    assert result.exit_code == 1
    assert "messages.en.sms: the template is too long (5,105 characters; at most 5,000)" in result.stderr
    with db.transaction() as session:
        assert session.scalars(select(Campaign)).all() == []


def test_list_pause_and_resume(database_url: str, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text(FILE)
    nps(database_url, "campaigns", "apply", str(path))
    assert nps(database_url, "campaigns", "pause", "post-delivery").stdout.strip() == "post-delivery: paused"
    listing = nps(database_url, "campaigns", "list").stdout
    assert "quarterly-pulse" in listing and "post-delivery" in listing and "paused" in listing
    assert nps(database_url, "campaigns", "resume", "post-delivery").exit_code == 0
    with db.transaction() as session:
        assert {c.status for c in session.scalars(select(Campaign))} == {CampaignStatus.ACTIVE}
    missing = nps(database_url, "campaigns", "pause", "nope")
    assert missing.exit_code == 1 and "no campaign named 'nope'" in missing.stderr


def test_contacts_why_explains_history_and_skips(
    engine: Container, database_url: str, tmp_path: Path
) -> None:
    add_contacts(
        engine,
        [
            {"external_id": "ana", "phone": "+4915112345678", "properties": {"plan": "pro", "region": "EU"}},
            {"external_id": "bo", "phone": "+4915112345679", "properties": {"plan": "free"}},
        ],
    )
    from tests.fixtures.engine import apply_yaml

    apply_yaml(engine, FILE.replace("first_after_days: 30", "first_after_days: 0").replace("90", "1"))
    with engine.db.transaction() as session:
        from storage.tables import Contact

        ana = session.scalars(select(Contact).where(Contact.external_id == "ana")).one()
        ana.opted_out_at = engine.clock.now()
    plan(engine)
    why = nps(database_url, "contacts", "why", "ana")
    assert why.exit_code == 0, why.output
    assert "never surveyed yet" in why.stdout
    assert "quarterly-pulse: skipped (opted_out)" in why.stdout
    assert "opted out of all surveys" in why.stdout
    assert "quarterly-pulse: not in the audience" in nps(database_url, "contacts", "why", "bo").stdout
    unknown = nps(database_url, "contacts", "why", "zed")
    assert unknown.exit_code == 1 and "no contact with external_id 'zed'" in unknown.stderr


def test_the_shipped_example_file_applies(database_url: str, db: Database) -> None:
    example = Path(__file__).parents[3] / "campaigns.example.yaml"
    result = nps(database_url, "campaigns", "apply", str(example))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no warnings either
    assert result.stdout.splitlines() == [
        "quarterly-pulse: created",
        "post-delivery: created",
        "onboarding-then-quarterly: created",
    ]


def test_list_shows_the_surveys_planned_today_and_in_the_next_seven_days(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from campaigns.contacts.store import upsert_contacts
    from campaigns.contacts.validation import validate_contact

    path = tmp_path / "campaigns.yaml"
    path.write_text(
        """
campaigns:
  - name: daily-pulse
    kind: relationship
    interval_days: 1
    channels: [sms]
    send_window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
"""
    )
    nps(database_url, "campaigns", "apply", str(path))
    with db.transaction() as session:
        upsert_contacts(
            [validate_contact({"external_id": f"c{i}", "phone": f"+4915112{i:06d}"}) for i in range(3)],
            session=session,
            now=datetime(2020, 1, 1, tzinfo=UTC),
        )
    listing = nps(database_url, "campaigns", "list")
    assert listing.exit_code == 0, listing.output
    header = next(line for line in listing.stdout.splitlines() if "planned today" in line)
    assert "next 7 days" in header
    row = next(line for line in listing.stdout.splitlines() if "daily-pulse" in line)
    cells = [cell.strip() for cell in row.strip("│┃ ").split("│")]
    # Each contact is due now; the fatigue rule (90 days) keeps the next seven days to that one survey each.
    assert cells[3:5] == ["3", "3"], row


# --- variables: a misspelt one is an error at apply, not an empty string at send time ------------------------

TYPO = """
campaigns:
  - name: pulse
    kind: relationship
    channels: [sms]
    messages:
      en: {sms: "Hi {{ frist_name }}, how was {{ product }} on your {{ plan }} plan? Reply 0-10."}
"""


def test_apply_refuses_an_unknown_variable_and_says_what_is_known(
    engine: Container, database_url: str, tmp_path: Path
) -> None:
    add_contacts(engine, [{"external_id": "ana", "phone": "+4915112345678", "properties": {"plan": "pro"}}])
    path = tmp_path / "campaigns.yaml"
    path.write_text(TYPO)
    result = nps(database_url, "campaigns", "apply", str(path))
    assert result.exit_code == 1
    assert (
        "campaigns[0] (pulse).messages.en.sms: uses 'frist_name', which no contact has (did you mean 'first_name'?)"
        in result.stderr
    )
    assert "uses 'product', which no contact has" in result.stderr  # 'plan' is a property contacts have
    assert "'plan'" not in result.stderr


def test_apply_accepts_properties_the_file_declares_for_contacts_not_imported_yet(
    database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text("properties: [product, plan]\n" + TYPO.replace("frist_name", "first_name"))
    result = nps(database_url, "campaigns", "apply", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "pulse: created"


PREVIEWED = """
campaigns:
  - name: pulse
    kind: relationship
    channels: [sms, email]
    brand: Acme
    messages:
      en: {sms: "Hi {{ first_name }}, rate Acme 0-10 or tap {{ survey_url }}"}
"""


def test_preview_prints_every_text_with_its_segments_and_encoding(
    database_url: str, engine: Container, tmp_path: Path
) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text(PREVIEWED)
    assert nps(database_url, "campaigns", "apply", str(path)).exit_code == 0
    add_contacts(
        engine, [{"external_id": "ana", "name": "Ana Lima", "phone": "+4915112345678", "locale": "vi"}]
    )
    result = nps(database_url, "campaigns", "preview", "pulse", "--contact", "ana")
    assert result.exit_code == 0, result.output
    out = result.stdout
    # The contact's locale: the campaign wrote no Vietnamese invitation, so the shipped one, to "Ana".
    assert "invitation (sms): 1 segment, GSM-7" in out
    assert "Chao Ana, ban co gioi thieu Acme cho ban be khong?" in out
    for label in (
        "reminder (sms)",
        "follow-up question to detractors (sms)",
        "follow-up question to passives (sms)",
        "follow-up question to promoters (sms)",
        "closing to detractors with an open follow-up (sms)",
        "closing to promoters (sms)",
        "opt-out confirmation (sms)",
    ):
        assert label in out
    assert "closing to promoters with the promoter link" not in out  # the campaign has no promoter_link
    assert "opt-out confirmation (sms): 2 segments, UCS-2, 80 characters" in out  # "Bạn đã hủy đăng ký ..."
    assert "email subject (email)" in out
    english = nps(database_url, "campaigns", "preview", "pulse", "--locale", "en").stdout
    # The campaign's own text, with the opt-out line the first text to a number gets, and the short link.
    assert "Hi Alexandra, rate Acme 0-10 or tap http://" in english
    assert "/s/xxxxxxxxxx\nReply STOP to opt out." in english
    assert "invitation (sms): 1 segment, GSM-7" in english
    missing = nps(database_url, "campaigns", "preview", "nope")
    assert missing.exit_code == 1 and "no campaign named 'nope'" in missing.stderr


def test_a_test_survey_is_sent_at_once_to_a_test_address_that_no_campaign_plans_for(
    database_url: str, engine: Container, tmp_path: Path
) -> None:
    from storage.enums import InvitationState
    from storage.tables import Contact, Invitation, Message

    path = tmp_path / "campaigns.yaml"
    path.write_text(
        PREVIEWED.replace("channels: [sms, email]", "channels: [sms, email]\n    interval_days: 1")
    )
    assert nps(database_url, "campaigns", "apply", str(path)).exit_code == 0
    # A test goes at once, also outside the send window (closed most of the week: Mon-Thu 09:00-12:00).
    result = nps(database_url, "campaigns", "test", "pulse", "--to", "+49 151 1234 5678")
    assert result.exit_code == 0, result.output
    assert (
        "pulse: test survey sent by sms to +4••••••••••78; it never counts in the statistics" in result.stdout
    )
    with engine.db.transaction() as session:
        contact = session.scalars(select(Contact)).one()
        assert (contact.phone, contact.test) == ("+4915112345678", True)
        invitation = session.scalars(select(Invitation)).one()
        assert invitation.state is InvitationState.SENT
        [message] = session.scalars(select(Message)).all()
        assert message.body is not None and "rate Acme 0-10 or tap" in message.body
    plan(engine)  # the test address is in no campaign's audience
    with engine.db.transaction() as session:
        assert len(session.scalars(select(Invitation)).all()) == 1
    assert nps(database_url, "campaigns", "test", "pulse", "--to", "+49 151 1234 5678").exit_code == 0
    email = nps(database_url, "campaigns", "test", "pulse", "--to", "qa@example.com")
    assert "test survey sent by email to q•••@example.com" in email.stdout, email.output
    bad = nps(database_url, "campaigns", "test", "pulse", "--to", "not a number")
    assert bad.exit_code == 1 and "--to: " in bad.stderr
