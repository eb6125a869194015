from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.fields import EVENT_RE, NAME_RE, format_duration, parse_duration
from campaigns.definitions.json_codec import definition_from_json, definition_to_json
from campaigns.definitions.model import Audience, CampaignDefinition, SendWindow
from campaigns.definitions.problems import CampaignFileError, ParsedFile, Problem
from campaigns.messages.catalogue import KEYS, MESSAGE_FIELDS, MessageTexts
from storage.enums import CampaignKind, Channel

PRODUCT_EXAMPLE = """\
campaigns:
  - name: quarterly-pulse
    kind: relationship            # relationship | transactional
    interval_days: 90
    first_after_days: 30
    audience: {plan: [pro, enterprise], region: EU}   # property filters; a list means "any of"
    channels: [sms, email]        # tried in this order, by what the contact has and consents to
    send_window: {days: [mon, tue, wed, thu], start: "09:00", end: "12:00"}   # recipient's local time
    remind_after: 3d
    expires_after: 14d
    sample_rate: 1.0
    locale: en                    # default locale; contacts' own locale wins when a text exists for it
    messages:
      en: {sms: "Hi {{ first_name }}, how likely are you to recommend Acme to a friend? Reply 0-10. Reply STOP to opt out."}
  - name: post-delivery
    kind: transactional
    event: order_delivered
    delay: 14d
    dedupe_days: 30
    min_days_between_surveys: 30  # overrides the global fatigue rule for this campaign
    channels: [email, sms]
"""

P = "campaigns[0] (pulse)"


def campaign_file(fields: str = "", *, name: str = "pulse", kind: str = "relationship") -> str:
    """A file with one campaign; ``fields`` are extra lines of it (dedented, then indented under the item)."""
    head = f"campaigns:\n  - name: {name}\n    kind: {kind}\n"
    return head + textwrap.indent(textwrap.dedent(fields), "    ")


def parse_one(fields: str = "", **kwargs: str) -> CampaignDefinition:
    parsed = parse_campaign_file(campaign_file(fields, **kwargs))
    assert len(parsed.campaigns) == 1
    return parsed.campaigns[0]


def problems_of(text: str) -> list[str]:
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign_file(text)
    assert str(caught.value) == "\n".join(str(problem) for problem in caught.value.problems)
    return [str(problem) for problem in caught.value.problems]


def only_problem(fields: str, **kwargs: str) -> str:
    problems = problems_of(campaign_file(fields, **kwargs))
    assert len(problems) == 1, problems
    return problems[0]


def warnings_of(fields: str, **kwargs: str) -> list[str]:
    return parse_campaign_file(campaign_file(fields, **kwargs)).warnings


# --- the example of the product specification ---------------------------------------------------------------


def test_the_product_example_parses_to_the_expected_definitions() -> None:
    parsed = parse_campaign_file(PRODUCT_EXAMPLE)
    assert parsed == ParsedFile(
        campaigns=[
            CampaignDefinition(
                name="quarterly-pulse",
                kind=CampaignKind.RELATIONSHIP,
                event=None,
                delay=timedelta(0),
                interval_days=90,
                first_after_days=30,
                dedupe_days=30,
                min_days_between_surveys=None,
                audience=Audience(properties={"plan": ("pro", "enterprise"), "region": ("EU",)}),
                channels=(Channel.SMS, Channel.EMAIL),
                send_window=SendWindow(frozenset({0, 1, 2, 3}), time(9), time(12)),
                timezone=None,
                remind_after=timedelta(days=3),
                expires_after=timedelta(days=14),
                sample_rate=1.0,
                daily_target=None,
                locale="en",
                brand=None,
                messages={
                    "en": MessageTexts(
                        sms="Hi {{ first_name }}, how likely are you to recommend Acme to a friend? Reply 0-10. Reply STOP to opt out."
                    )
                },
            ),
            CampaignDefinition(
                name="post-delivery",
                kind=CampaignKind.TRANSACTIONAL,
                event="order_delivered",
                delay=timedelta(days=14),
                interval_days=None,
                first_after_days=0,
                dedupe_days=30,
                min_days_between_surveys=30,
                audience=Audience(),
                channels=(Channel.EMAIL, Channel.SMS),
                send_window=SendWindow(frozenset({0, 1, 2, 3}), time(9), time(12)),
                timezone=None,
                remind_after=timedelta(days=3),
                expires_after=timedelta(days=14),
                sample_rate=1.0,
                daily_target=None,
                locale="en",
                brand=None,
                messages={},
            ),
        ],
        warnings=[],
    )


def test_defaults_of_a_minimal_relationship_campaign() -> None:
    definition = parse_one()
    assert definition == CampaignDefinition(name="pulse", kind=CampaignKind.RELATIONSHIP, interval_days=90)
    assert definition.send_window == SendWindow(frozenset({0, 1, 2, 3}), time(9), time(12))
    assert definition.channels == (Channel.SMS, Channel.EMAIL)
    assert definition.remind_after == timedelta(days=3)
    assert definition.expires_after == timedelta(days=14)
    assert definition.event is None


def test_defaults_of_a_minimal_transactional_campaign_mean_one_survey_per_event() -> None:
    definition = parse_one("event: ticket_closed\n", kind="transactional")
    assert definition.interval_days is None
    assert definition.delay == timedelta(0)
    assert definition.dedupe_days == 30
    assert definition.first_after_days == 0


def test_both_spellings_of_the_combination_work() -> None:
    relationship = parse_one("event: onboarding_done\ndelay: 7d\ninterval_days: 90\n")
    transactional = parse_one("event: onboarding_done\ndelay: 7d\ninterval_days: 90\n", kind="transactional")
    for definition in (relationship, transactional):
        assert (definition.event, definition.delay, definition.interval_days) == (
            "onboarding_done",
            timedelta(days=7),
            90,
        )


def test_every_field_can_be_set() -> None:
    definition = parse_one(
        """\
        event: order.delivered
        delay: 1d12h
        interval_days: 180
        first_after_days: 10
        dedupe_days: 0
        min_days_between_surveys: 45
        audience:
          plan: pro
          seats: 10
          zip: 01234
          trial: true
          created_at: {after: 2025-01-01, before: "2026-01-01T09:30:00+01:00"}
        channels: email
        send_window: {days: weekdays, start: "8:30", end: "17:00"}
        timezone: europe/berlin
        remind_after: never
        expires_after: 2w
        sample_rate: 25%
        daily_target: 500
        locale: pt_br
        brand: Acme
        messages:
          pt_BR: {sms: "Oi {{ first_name }}", email_subject: "Assunto", page_thanks: "Valeu!"}
        """
    )
    assert definition == CampaignDefinition(
        name="pulse",
        kind=CampaignKind.RELATIONSHIP,
        event="order.delivered",
        delay=timedelta(days=1, hours=12),
        interval_days=180,
        first_after_days=10,
        dedupe_days=0,
        min_days_between_surveys=45,
        audience=Audience(
            properties={"plan": ("pro",), "seats": ("10",), "zip": ("01234",), "trial": ("true",)},
            created_before=datetime(2026, 1, 1, 8, 30, tzinfo=UTC),
            created_after=datetime(2025, 1, 1, tzinfo=UTC),
        ),
        channels=(Channel.EMAIL,),
        send_window=SendWindow(frozenset(range(5)), time(8, 30), time(17)),
        timezone="Europe/Berlin",
        remind_after=None,
        expires_after=timedelta(weeks=2),
        sample_rate=0.25,
        daily_target=500,
        locale="pt-BR",
        brand="Acme",
        messages={
            "pt-BR": MessageTexts(
                sms="Oi {{ first_name }}", email_subject="Assunto", others={"page_thanks": "Valeu!"}
            )
        },
    )


def test_yaml_1_1_surprises_do_not_happen() -> None:
    definition = parse_one(
        """\
        locale: no
        send_window: {days: [mon], start: 09:00, end: 10:30}
        audience: {answer: yes, zip: 0777}
        messages:
          no: {sms: "Hei"}
          on: {sms: "On"}
        """
    )
    assert definition.locale == "no"
    assert definition.send_window == SendWindow(frozenset({0}), time(9), time(10, 30))
    assert definition.audience.properties == {"answer": ("yes",), "zip": ("0777",)}
    assert set(definition.messages) == {"no", "on"}


# --- problems: the file as a whole --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty; it needs a 'campaigns:' list"),
        ("# only a comment\n", "the file is empty; it needs a 'campaigns:' list"),
        ("- name: x\n", "the file must be a mapping with a 'campaigns:' list, not a list"),
        ("campaigns: []\n", "campaigns: must be a non-empty list of campaigns (a list)"),
        ("campaigns:\n", "campaigns: must be a non-empty list of campaigns (missing)"),
        ("campaigns: pulse\n", "campaigns: must be a non-empty list of campaigns (text 'pulse')"),
        (
            "campaigns:\n  - pulse\n",
            "campaigns[0]: must be a mapping of fields (name, kind, ...), not text 'pulse'",
        ),
    ],
)
def test_file_shape_problems(text: str, expected: str) -> None:
    assert problems_of(text) == [expected]


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    text = campaign_file().replace("campaigns:", "campaign:")
    assert problems_of(text + "x: 1\n") == [
        "campaign: unknown field 'campaign'; did you mean 'campaigns'?",
        "x: unknown field 'x'; known fields: campaigns, properties",
        "campaigns: must be a non-empty list of campaigns (missing)",
    ]


def test_yaml_syntax_error_names_the_line() -> None:
    text = campaign_file("channels: [sms, email\nlocale: en\n")
    [problem] = problems_of(text)
    assert problem.startswith("line 5, column 11: not valid YAML: expected ',' or ']'")


def test_yaml_indentation_error_names_the_line() -> None:
    [problem] = problems_of("campaigns:\n  - name: a\n    kind: relationship\n   locale: en\n")
    assert problem.startswith("line 4, column ")
    assert "not valid YAML" in problem


def test_a_key_given_twice_is_an_error_with_its_line() -> None:
    assert problems_of(campaign_file("locale: en\nlocale: de\n")) == [
        "line 5, column 5: the key 'locale' is given twice"
    ]


def test_duplicate_campaign_names_are_an_error() -> None:
    text = (
        campaign_file() + "  - name: pulse\n    kind: relationship\n  - name: pulse\n    kind: relationship\n"
    )
    assert problems_of(text) == [
        "campaigns[1] (pulse).name: 'pulse' is already the name of campaigns[0]; names must be unique",
        "campaigns[2] (pulse).name: 'pulse' is already the name of campaigns[0]; names must be unique",
    ]


def test_all_problems_of_a_file_are_reported_at_once() -> None:
    text = """\
campaigns:
  - name: Quarterly Pulse
    kind: relationshp
    intervall_days: 90
    send_window: {days: [mon, funday], start: "13:00", end: "12:00"}
    channels: [sms, sms]
  - name: post-delivery
    kind: transactional
    delay: 3d
    remind_after: 20d
    sample_rate: 2
"""
    assert problems_of(text) == [
        "campaigns[0].name: 'Quarterly Pulse' is not a valid name: use 1-100 lowercase letters (a-z), digits, "
        "'-' or '_', e.g. 'quarterly-pulse'",
        "campaigns[0].intervall_days: unknown field 'intervall_days'; did you mean 'interval_days'?",
        "campaigns[0].kind: 'relationshp' is not a kind; use relationship or transactional "
        "(did you mean 'relationship'?)",
        "campaigns[0].channels: lists 'sms' twice; each channel is tried once, in the order given",
        "campaigns[0].send_window.days: 'funday' is not a day; use mon, tue, wed, thu, fri, sat, sun, a range "
        "such as mon-thu, weekdays, weekend or every day",
        "campaigns[0].send_window.end: (12:00) must be after start (13:00); a window cannot cross midnight",
        "campaigns[1] (post-delivery).sample_rate: must be more than 0 and at most 1 (e.g. 0.25 or '25%'), "
        "not 2",
        "campaigns[1] (post-delivery).event: is required for a transactional campaign (the event that "
        "triggers it, e.g. order_delivered)",
        "campaigns[1] (post-delivery).remind_after: (20d) must be shorter than expires_after (14d); a reminder "
        "after expiry would never be sent",
    ]


def test_campaign_file_error_lists_problems_one_per_line() -> None:
    error = CampaignFileError([Problem("campaigns[0].kind", "is required"), Problem("", "line 3: bad")])
    assert str(error) == "campaigns[0].kind: is required\nline 3: bad"
    assert error.problems == [Problem("campaigns[0].kind", "is required"), Problem("", "line 3: bad")]


# --- problems: one field at a time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "Quarterly Pulse",
            "campaigns[0].name: 'Quarterly Pulse' is not a valid name: use 1-100 lowercase letters (a-z), "
            "digits, '-' or '_', e.g. 'quarterly-pulse'",
        ),
        (
            "pulse.q1",
            "campaigns[0].name: 'pulse.q1' is not a valid name: use 1-100 lowercase letters (a-z), digits, "
            "'-' or '_', e.g. 'pulse-q1'",
        ),
        ("'  '", "campaigns[0].name: is empty"),
        ("[a]", "campaigns[0].name: must be text, not a list"),
    ],
)
def test_name_must_be_a_lowercase_slug(name: str, expected: str) -> None:
    assert only_problem("", name=name) == expected


def test_name_is_required() -> None:
    text = "campaigns:\n  - kind: relationship\n"
    assert problems_of(text) == [
        "campaigns[0].name: is required (a unique lowercase slug such as quarterly-pulse)"
    ]


def test_name_length_limit() -> None:
    assert parse_one(name="a" * 100).name == "a" * 100
    assert only_problem("", name="a" * 101) == "campaigns[0].name: is too long (101 characters; at most 100)"


def test_a_numeric_name_is_read_as_text() -> None:
    assert parse_one(name="2025").name == "2025"


@pytest.mark.parametrize(
    ("delay", "expected"),
    [
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("30s", timedelta(seconds=30)),
        ("90sec", timedelta(seconds=90)),
    ],
)
def test_a_delay_of_zero_or_seconds_is_valid(delay: str, expected: timedelta) -> None:
    definition = parse_one(f"event: ticket_closed\ndelay: {delay}\n", kind="transactional")
    assert definition.delay == expected


def test_min_days_between_surveys_0_is_accepted_with_a_warning() -> None:
    definition = parse_one("min_days_between_surveys: 0\n")
    assert definition.min_days_between_surveys == 0
    assert warnings_of("min_days_between_surveys: 0\n") == [
        f"{P}.min_days_between_surveys: is 0: this campaign ignores the fatigue rule and may survey a contact "
        "again as soon as it plans to (NPS_MIN_DAYS_BETWEEN_SURVEYS does not apply to it)"
    ]


def test_kind_is_required() -> None:
    text = "campaigns:\n  - name: pulse\n"
    assert problems_of(text) == [f"{P}.kind: is required (relationship or transactional)"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            "event: Order Delivered\n",
            f"{P}.event: 'Order Delivered' is not a valid event name: use 1-100 lowercase letters (a-z), digits, '_', '-' or '.', e.g. 'order-delivered'",
        ),
        ("delay: 3d\n", f"{P}.delay: only applies to a campaign with an 'event'"),
        ("dedupe_days: 10\n", f"{P}.dedupe_days: only applies to a campaign with an 'event'"),
        ("interval_days: 0\n", f"{P}.interval_days: must be from 1 to 3650 days, not 0"),
        ("interval_days: 3651\n", f"{P}.interval_days: must be from 1 to 3650 days, not 3651"),
        ("interval_days: ninety\n", f"{P}.interval_days: must be a whole number of days, not text 'ninety'"),
        ("interval_days: 90.5\n", f"{P}.interval_days: must be a whole number of days, not the number 90.5"),
        ("interval_days: true\n", f"{P}.interval_days: must be a whole number of days, not true/false"),
        ("first_after_days: -1\n", f"{P}.first_after_days: must be from 0 to 3650 days, not -1"),
        (
            "event: x\ndelay: -1\n",
            f"{P}.delay: a duration must not be negative; use a number with a unit: 30m, 12h, 3d or 2w (combinations such as 1d12h work), or whole days",
        ),
        (
            "min_days_between_surveys: -1\n",
            f"{P}.min_days_between_surveys: must be from 0 to 3650 days, not -1",
        ),
        ("expires_after: 0d\n", f"{P}.expires_after: must be longer than 0"),
        ("expires_after: 3651d\n", f"{P}.expires_after: '3651d' is too long (at most 3650 days)"),
        (
            "expires_after: 2x\n",
            f"{P}.expires_after: '2x' is not a duration ('x' is not a unit); use a number with a unit: 30m, 12h, "
            "3d or 2w (combinations such as 1d12h work), or whole days",
        ),
        (
            "expires_after: 1.5d\n",
            f"{P}.expires_after: '1.5d' is not a duration; use a number with a unit: 30m, 12h, 3d or 2w "
            "(combinations such as 1d12h work), or whole days",
        ),
        ("remind_after: 0m\n", f"{P}.remind_after: must be longer than 0"),
        ("remind_after: true\n", f"{P}.remind_after: must be a duration such as 3d, or never"),
        (
            "remind_after: 14d\n",
            f"{P}.remind_after: (14d) must be shorter than expires_after (14d); a reminder after expiry would "
            "never be sent",
        ),
        (
            "remind_after: 2d\nexpires_after: 36h\n",
            f"{P}.remind_after: (2d) must be shorter than expires_after (1d12h); a reminder after expiry would "
            "never be sent",
        ),
        ("channels: []\n", f"{P}.channels: must name at least one channel (sms, email)"),
        (
            "channels: [sms, sms]\n",
            f"{P}.channels: lists 'sms' twice; each channel is tried once, in the order given",
        ),
        (
            "channels: [smss]\n",
            f"{P}.channels: 'smss' is not a channel; use sms or email (did you mean 'sms'?)",
        ),
        ("channels: [whatsapp]\n", f"{P}.channels: 'whatsapp' is not a channel; use sms or email"),
        ("channels: {sms: 1}\n", f"{P}.channels: must be a list such as [sms, email], not a mapping"),
        (
            "timezone: Mars/Base\n",
            f"{P}.timezone: 'Mars/Base' is not an IANA time zone (e.g. Europe/Berlin, America/New_York)",
        ),
        (
            "sample_rate: 0\n",
            f"{P}.sample_rate: must be more than 0 and at most 1 (e.g. 0.25 or '25%'), not 0",
        ),
        (
            "sample_rate: 1.5\n",
            f"{P}.sample_rate: must be more than 0 and at most 1 (e.g. 0.25 or '25%'), not 1.5",
        ),
        (
            "sample_rate: 150%\n",
            f"{P}.sample_rate: must be more than 0 and at most 1 (e.g. 0.25 or '25%'), not 1.5",
        ),
        (
            "sample_rate: half\n",
            f"{P}.sample_rate: must be a number between 0 and 1 (e.g. 0.25 or '25%'), not text 'half'",
        ),
        (
            "sample_rate: true\n",
            f"{P}.sample_rate: must be a number between 0 and 1 (e.g. 0.25 or '25%'), not true/false",
        ),
        ("sample_rate: a%\n", f"{P}.sample_rate: 'a%' is not a percentage"),
        ("daily_target: 0\n", f"{P}.daily_target: must be from 1 to 10000000 contacts a day, not 0"),
        (
            "daily_target: 2.5\n",
            f"{P}.daily_target: must be a whole number of contacts a day, not the number 2.5",
        ),
        (
            "locale: english\n",
            f"{P}.locale: 'english' is not a locale; use a language code such as en, de or pt-BR",
        ),
        ("brand: ' '\n", f"{P}.brand: is empty"),
        ("brand: " + "b" * 101 + "\n", f"{P}.brand: is too long (101 characters; at most 100)"),
        (
            "intervall_days: 90\n",
            f"{P}.intervall_days: unknown field 'intervall_days'; did you mean 'interval_days'?",
        ),
        ("remind: 3d\n", f"{P}.remind: unknown field 'remind'; did you mean 'remind_after'?"),
    ],
)
def test_field_problems(fields: str, expected: str) -> None:
    assert only_problem(fields) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            "event: x\n",
            "campaigns[0] (pulse).event: is required for a transactional campaign (the event that triggers it, e.g. order_delivered)",
        ),
        (
            "event: order_delivered\ndedupe_days: -1\n",
            f"{P}.dedupe_days: must be from 0 to 3650 days, not -1",
        ),
        (
            "event: order_delivered\ninterval_days: 0\n",
            f"{P}.interval_days: must be from 1 to 3650 days, not 0",
        ),
        (
            "event: order_delivered\ndelay: soon\n",
            f"{P}.delay: 'soon' is not a duration; use a number with a unit: 30m, 12h, 3d or 2w (combinations such as 1d12h work), or whole days",
        ),
    ],
)
def test_transactional_field_problems(fields: str, expected: str) -> None:
    fields = fields.replace("event: x\n", "")
    assert only_problem(fields, kind="transactional") == expected


def test_an_invalid_event_does_not_also_complain_about_delay() -> None:
    assert only_problem("event: 'Bad Event'\ndelay: 3d\n", kind="transactional").startswith(
        f"{P}.event: 'Bad Event' is not a valid event name"
    )


# --- durations ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("14d", timedelta(days=14)),
        ("3d", timedelta(days=3)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("1w", timedelta(weeks=1)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1d 12h 30m", timedelta(days=1, hours=12, minutes=30)),
        ("2 weeks", timedelta(weeks=2)),
        ("14", timedelta(days=14)),
        (14, timedelta(days=14)),
        (0, timedelta(0)),
        (" 3D ", timedelta(days=3)),
    ],
)
def test_parse_duration(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["", "d", "-3d", "1.5d", "3 d x", "3y", -3, True, 1.5, None, [3]])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(days=14), "14d"),
        (timedelta(days=1, hours=12), "1d12h"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(0), "0m"),
        (timedelta(seconds=5), "5s"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


@pytest.mark.parametrize("value", ["null", "never", "Never", "false", "off", "none"])
def test_reminders_can_be_turned_off(value: str) -> None:
    assert parse_one(f"remind_after: {value}\n").remind_after is None


def test_a_missing_reminder_uses_the_default() -> None:
    assert parse_one("expires_after: 30d\n").remind_after == timedelta(days=3)


# --- send window --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("[mon, tue, wed, thu]", {0, 1, 2, 3}),
        ("[Monday, FRIDAY, sun]", {0, 4, 6}),
        ("[tues, thurs]", {1, 3}),
        ("weekdays", {0, 1, 2, 3, 4}),
        ("weekend", {5, 6}),
        ("every day", set(range(7))),
        ("daily", set(range(7))),
        ("mon-thu", {0, 1, 2, 3}),
        ("fri-mon", {4, 5, 6, 0}),
        ("'mon, wed'", {0, 2}),
        ("[mon-wed, sat]", {0, 1, 2, 5}),
        ("[mon, mon]", {0}),
    ],
)
def test_send_window_days(days: str, expected: set[int]) -> None:
    definition = parse_one(f"send_window: {{days: {days}}}\n")
    assert definition.send_window == SendWindow(frozenset(expected), time(9), time(12))


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (
            "{days: []}",
            f"{P}.send_window.days: must name at least one day; use mon, tue, wed, thu, fri, sat, sun, a range such as mon-thu, weekdays, weekend or every day",
        ),
        (
            "{days: [1, 2]}",
            f"{P}.send_window.days: '1' is not a day; use mon, tue, wed, thu, fri, sat, sun, a range such as mon-thu, weekdays, weekend or every day",
        ),
        (
            "{days: 5}",
            f"{P}.send_window.days: must be a list of days such as [mon, tue, wed, thu], not the number 5",
        ),
        (
            "{start: '25:00'}",
            f'{P}.send_window.start: \'25:00\' is not a time; use 24-hour HH:MM such as "09:00" or "17:30"',
        ),
        (
            "{start: 9am}",
            f'{P}.send_window.start: \'9am\' is not a time; use 24-hour HH:MM such as "09:00" or "17:30"',
        ),
        (
            "{start: 9}",
            f'{P}.send_window.start: must be a time such as "09:00" (24-hour HH:MM), not the number 9',
        ),
        (
            "{start: '12:00'}",
            f"{P}.send_window.end: (12:00) must be after start (12:00); a window cannot cross midnight",
        ),
        (
            "{start: '22:00', end: '02:00'}",
            f"{P}.send_window.end: (02:00) must be after start (22:00); a window cannot cross midnight",
        ),
        ("{stat: '08:00'}", f"{P}.send_window.stat: unknown field 'stat'; did you mean 'start'?"),
        ("[mon]", f"{P}.send_window: must be a mapping (days, start and end), not a list"),
    ],
)
def test_send_window_problems(window: str, expected: str) -> None:
    assert only_problem(f"send_window: {window}\n") == expected


def test_send_window_keeps_defaults_for_what_is_not_given() -> None:
    assert parse_one("send_window: {end: '18:00'}\n").send_window == SendWindow(
        frozenset({0, 1, 2, 3}), time(9), time(18)
    )


def test_send_window_checks_its_own_invariants() -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        SendWindow(frozenset({0}), time(12), time(9))
    with pytest.raises(ValueError, match=r"0\.\.6"):
        SendWindow(frozenset({7}), time(9), time(12))
    with pytest.raises(ValueError, match=r"0\.\.6"):
        SendWindow(frozenset(), time(9), time(12))


# --- timezone and locale ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Europe/Berlin", "Europe/Berlin"), ("america/new_york", "America/New_York"), ("UTC", "UTC")],
)
def test_timezone_is_validated_and_canonicalised(value: str, expected: str) -> None:
    assert parse_one(f"timezone: {value}\n").timezone == expected


def test_timezone_null_means_the_service_default() -> None:
    assert parse_one("timezone: null\n").timezone is None


@pytest.mark.parametrize(("value", "expected"), [("de", "de"), ("PT_br", "pt-BR"), ("zh-hans", "zh-Hans")])
def test_locale_is_normalised(value: str, expected: str) -> None:
    assert parse_one(f"locale: {value}\n").locale == expected


# --- audience -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        (
            "{plan: []}",
            f"{P}.audience.plan: is an empty list, which no contact matches; remove the filter or list values",
        ),
        ("{plan: ''}", f"{P}.audience.plan: contains an empty value, which no contact matches"),
        ("{plan: null}", f"{P}.audience.plan: values must be text or numbers, not null"),
        ("{plan: {a: b}}", f"{P}.audience.plan: values must be text or numbers, not a mapping"),
        ("{plan: [[a]]}", f"{P}.audience.plan: values must be text or numbers, not a list"),
        (
            "{Email: x}",
            f"{P}.audience.Email: 'Email' is a contact field, not a property; audience filters apply to properties and created_at",
        ),
        (
            "{created_at: 2026-01-01}",
            f"{P}.audience.created_at: must be a mapping (such as {{before: 2026-01-01, after: 2025-01-01}}), not text '2026-01-01'",
        ),
        (
            "{created_at: {befor: 2026-01-01}}",
            f"{P}.audience.created_at.befor: unknown field 'befor'; did you mean 'before'?",
        ),
        (
            "{created_at: {before: soon}}",
            f"{P}.audience.created_at.before: 'soon' is not a date; use 2026-01-01 or an ISO date-time such as 2026-01-01T09:00:00+01:00",
        ),
        (
            "{created_at: {before: 2025-01-01, after: 2025-01-01}}",
            f"{P}.audience.created_at: after (2025-01-01T00:00:00+00:00) must be earlier than before (2025-01-01T00:00:00+00:00)",
        ),
        ("{1: x}", f"{P}.audience.1: property names must be text; put the name in quotes"),
        (
            "[plan]",
            f"{P}.audience: must be a mapping (property filters such as {{plan: [pro, enterprise], region: EU}}), not a list",
        ),
    ],
)
def test_audience_problems(audience: str, expected: str) -> None:
    assert only_problem(f"audience: {audience}\n") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T09:30:00", datetime(2026, 1, 1, 9, 30, tzinfo=UTC)),
        ("2026-01-01T09:30:00Z", datetime(2026, 1, 1, 9, 30, tzinfo=UTC)),
        ("2026-01-01T09:30:00+02:00", datetime(2026, 1, 1, 7, 30, tzinfo=UTC)),
        ("'2026-01-01 09:30'", datetime(2026, 1, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_created_at_accepts_dates_and_datetimes(value: str, expected: datetime) -> None:
    audience = parse_one(f"audience: {{created_at: {{before: {value}}}}}\n").audience
    assert audience.created_before == expected
    assert audience.created_before is not None and audience.created_before.utcoffset() == timedelta(0)


NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def test_audience_any_of_and_all_filters() -> None:
    audience = Audience(properties={"plan": ("pro", "enterprise"), "region": ("EU",)})
    assert audience.matches({"plan": "pro", "region": "EU"}, NOW)
    assert audience.matches({"plan": "enterprise", "region": "EU", "other": "x"}, NOW)
    assert not audience.matches({"plan": "free", "region": "EU"}, NOW)
    assert not audience.matches({"plan": "pro", "region": "US"}, NOW)


def test_audience_compares_text_without_case_or_surrounding_space() -> None:
    audience = Audience(properties={"region": ("EU",), "seats": ("10",), "trial": ("true",)})
    assert audience.matches({"region": " eu ", "seats": 10, "trial": True}, NOW)
    assert audience.matches({"Region": "Eu", "SEATS": "10", "trial": "TRUE"}, NOW)
    assert not audience.matches({"region": "eu", "seats": 10.5, "trial": True}, NOW)
    assert not audience.matches({"region": "eu", "seats": 10, "trial": False}, NOW)


def test_a_missing_or_empty_property_never_matches() -> None:
    audience = Audience(properties={"region": ("EU",)})
    assert not audience.matches({}, NOW)
    assert not audience.matches({"region": None}, NOW)
    assert not audience.matches({"region": ""}, NOW)
    assert not Audience(properties={"region": ("",)}).matches({}, NOW)


def test_naive_audience_bounds_are_utc() -> None:
    audience = Audience(created_before=datetime(2026, 1, 1))
    assert audience.created_before == datetime(2026, 1, 1, tzinfo=UTC)
    assert audience.matches({}, datetime(2025, 12, 31, 23, 59, tzinfo=UTC))


def test_an_empty_audience_matches_everyone() -> None:
    assert Audience().matches({}, NOW)


def test_audience_created_at_range() -> None:
    audience = Audience(
        created_after=datetime(2025, 1, 1, tzinfo=UTC), created_before=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert audience.matches({}, datetime(2025, 1, 1, tzinfo=UTC))  # after is inclusive
    assert audience.matches({}, datetime(2025, 12, 31, 23, 59, tzinfo=UTC))
    assert not audience.matches({}, datetime(2026, 1, 1, tzinfo=UTC))  # before is exclusive
    assert not audience.matches({}, datetime(2024, 12, 31, 23, 59, tzinfo=UTC))
    # A naive timestamp (as SQLite returns them) is UTC; an aware one is compared as an instant.
    assert audience.matches({}, datetime(2025, 6, 1))
    assert not audience.matches(
        {}, datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))) + timedelta(hours=1)
    )
    assert audience.matches({}, datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))))


def test_audience_from_a_file_matches_like_the_example_says() -> None:
    audience = parse_campaign_file(PRODUCT_EXAMPLE).campaigns[0].audience
    assert audience.matches({"plan": "Enterprise", "region": "eu"}, NOW)
    assert not audience.matches({"plan": "Enterprise"}, NOW)


# --- messages -----------------------------------------------------------------------------------------------

TEXTS_HINT = "catalogue keys such as sms, email_subject, ask_comment or page_thanks"


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            "{de: {sms: '{{ first_name '}}",
            f"{P}.messages.de.sms: template syntax error on line 1: unexpected end of template, expected 'end of print statement'.",
        ),
        (
            '{de: {sms: "Hallo\\n{{ x }"}}',
            f"{P}.messages.de.sms: template syntax error on line 2: unexpected '}}'",
        ),
        ("{de: {sms: '  '}}", f"{P}.messages.de.sms: is empty; remove it to use the shipped text"),
        ("{de: {sms: 5}}", f"{P}.messages.de.sms: must be text (a template), not the number 5"),
        (
            "{de: {emai_subject: x}}",
            f"{P}.messages.de.emai_subject: unknown field 'emai_subject'; did you mean 'email_subject'?",
        ),
        (
            '{de: {email_subject: "a\\n{{ first_name }}"}}',
            f"{P}.messages.de.email_subject: an email subject must be one line",
        ),
        (
            "{de: hallo}",
            f"{P}.messages.de: must be a mapping ({TEXTS_HINT}), not text 'hallo'",
        ),
        ("{de: null}", f"{P}.messages.de: must be a mapping of texts ({TEXTS_HINT})"),
        (
            "{german: {sms: x}}",
            f"{P}.messages.german: 'german' is not a locale; use a language code such as en, de or pt-BR",
        ),
        ("{pt-BR: {sms: x}, pt_br: {sms: y}}", f"{P}.messages.pt_br: locale 'pt-BR' is given twice"),
        ("[en]", f"{P}.messages: must be a mapping (locale -> texts, e.g. {{en: {{sms: ...}}}}), not a list"),
        (
            "{en: {sms: \"{{ ''.__class__.__mro__ }}\"}}",
            f"{P}.messages.en.sms: the template uses something the sandbox forbids: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "{en: {email_intro: '{% for i in range(1000) %}{% for j in range(1000) %}{{ company * 3 }}{% endfor %}{% endfor %}'}}",
            f"{P}.messages.en.email_intro: the template writes more than 10,000 characters",
        ),
        (
            "{en: {email_intro: '" + "x" * 5001 + "'}}",
            f"{P}.messages.en.email_intro: the template is too long (5,001 characters; at most 5,000)",
        ),
    ],
)
def test_message_problems(messages: str, expected: str) -> None:
    assert only_problem(f"messages: {messages}\n") == expected


def test_a_campaign_can_set_any_catalogue_key_per_locale() -> None:
    definition = parse_one(
        """\
        messages:
          en: {sms: "Hi!", ask_comment: "Why {{ first_name }}?", page_question: "Rate {{ company }}"}
          de: {page_thanks: "Danke!", question: "Wie wahrscheinlich?"}
        """
    )
    assert definition.messages == {
        "en": MessageTexts(
            sms="Hi!", others={"ask_comment": "Why {{ first_name }}?", "page_question": "Rate {{ company }}"}
        ),
        "de": MessageTexts(others={"page_thanks": "Danke!", "question": "Wie wahrscheinlich?"}),
    }
    assert definition.messages["en"].get("ask_comment") == "Why {{ first_name }}?"
    assert definition.messages["en"].get("sms") == "Hi!"
    assert definition.messages["de"].get("ask_comment") is None


def test_every_catalogue_key_is_accepted() -> None:
    texts = ", ".join(f'{key}: "Text {index}"' for index, key in enumerate(KEYS))
    definition = parse_campaign_file(campaign_file(f"messages: {{fr: {{{texts}}}}}\n")).campaigns[0]
    assert definition.messages["fr"].as_mapping() == {key: f"Text {index}" for index, key in enumerate(KEYS)}


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            "{en: {ask_coment: x}}",
            f"{P}.messages.en.ask_coment: unknown field 'ask_coment'; did you mean 'ask_comment'?",
        ),
        (
            "{de: {page_thank: x}}",
            f"{P}.messages.de.page_thank: unknown field 'page_thank'; did you mean 'page_thanks'?",
        ),
        (
            "{de: {zzz: x}}",
            f"{P}.messages.de.zzz: unknown field 'zzz'; a campaign can set the keys of campaigns/catalogue/en.yaml: "
            + ", ".join(KEYS),
        ),
        (
            "{de: {page_thanks: '{{ danke '}}",
            f"{P}.messages.de.page_thanks: template syntax error on line 1: unexpected end of template, expected 'end of print statement'.",
        ),
        (
            "{de: {ask_comment: ''}}",
            f"{P}.messages.de.ask_comment: is empty; remove it to use the shipped text",
        ),
        ("{de: {help: [a]}}", f"{P}.messages.de.help: must be text (a template), not a list"),
        (
            "{en: {thank_you: \"{{ ''.__class__ }}\"}}",
            f"{P}.messages.en.thank_you: the template uses something the sandbox forbids: access to attribute '__class__' of 'str' object is unsafe.",
        ),
    ],
)
def test_problems_of_other_catalogue_texts(messages: str, expected: str) -> None:
    assert only_problem(f"messages: {messages}\n") == expected


def test_an_unknown_text_in_a_campaign_file_names_its_path_among_other_problems() -> None:
    text = campaign_file('messages:\n  en: {ask_comment: "Why?", thanks_you: "Ta"}\n  de: {clarfy: "?"}\n')
    assert problems_of(text) == [
        f"{P}.messages.en.thanks_you: unknown field 'thanks_you'; did you mean 'thank_you'?",
        f"{P}.messages.de.clarfy: unknown field 'clarfy'; did you mean 'clarify'?",
    ]


def test_every_broken_template_is_reported() -> None:
    problems = problems_of(
        campaign_file(
            """\
            messages:
              en: {sms: "{{ a", email_intro: "{% if %}"}
              de: {sms_reminder: "{{ cycler.__init__.__globals__ }}"}
            """
        )
    )
    assert [problem.split(":")[0] for problem in problems] == [
        f"{P}.messages.en.sms",
        f"{P}.messages.en.email_intro",
        f"{P}.messages.de.sms_reminder",
    ]


# --- warnings -----------------------------------------------------------------------------------------------

LONG_GERMAN_SMS = (
    "Hallo {{ first_name }}, wie wahrscheinlich ist es, dass Sie {{ company }} einem Freund oder Kollegen "
    "weiterempfehlen würden? Antworten Sie bitte mit einer Zahl von 0 bis 10 – wir freuen uns! 😀"
)


def test_a_long_sms_template_is_a_warning_not_an_error() -> None:
    parsed = parse_campaign_file(campaign_file(f'messages:\n  de: {{sms: "{LONG_GERMAN_SMS}"}}\n'))
    assert len(parsed.campaigns) == 1
    assert parsed.warnings == [
        f"{P}.messages.de.sms: renders to 3 SMS segments (UCS-2, 187 characters); keep it within 2",
        f"{P}.messages.de.sms: {NO_OPT_OUT}'STOP zum Abmelden.'",
    ]


NO_OPT_OUT = "does not say how to opt out (STOP); the first message to each number gets "


def test_an_invitation_sms_without_the_opt_out_instruction_is_a_warning_naming_the_appended_text() -> None:
    fields = (
        'messages: {fr: {sms: "Notez-nous de 0 a 10"}, en: {sms: "Rate us 0-10. Reply STOP to opt out"}}\n'
    )
    assert warnings_of(fields) == [f"{P}.messages.fr.sms: {NO_OPT_OUT}'STOP pour vous désabonner.'"]
    # Later texts go to a number already told; an email-only campaign sends no SMS.
    assert warnings_of('messages: {en: {sms_reminder: "Reminder: rate us 0-10"}}\n') == []
    assert warnings_of('channels: [email]\nmessages: {en: {sms: "Rate us 0-10"}}\n') == []


def test_a_two_segment_sms_is_fine() -> None:
    assert warnings_of('messages: {en: {sms: "' + "x" * 293 + ' STOP"}}\n') == []
    assert warnings_of('messages: {en: {sms_reminder: "' + "x" * 307 + '"}}\n') == [
        f"{P}.messages.en.sms_reminder: renders to 3 SMS segments (GSM-7, 307 characters); keep it within 2"
    ]


def test_sms_length_is_not_checked_for_email_only_campaigns() -> None:
    assert warnings_of(f'channels: [email]\nmessages:\n  de: {{sms: "{LONG_GERMAN_SMS}"}}\n') == []


def test_a_template_that_needs_properties_is_a_warning() -> None:
    assert warnings_of('messages: {en: {sms: "You have {{ seats * 2 }} seats"}}\n') == [
        f"{P}.messages.en.sms: cannot be rendered for a contact without the properties it uses (the template "
        "uses a missing value: 'seats' is undefined)"
    ]


def test_long_sms_replies_are_warnings_and_page_texts_are_not_counted() -> None:
    long = "x" * 400
    assert warnings_of(f'messages: {{en: {{ask_comment: "{long}", page_thanks: "{long}"}}}}\n') == [
        f"{P}.messages.en.ask_comment: renders to 3 SMS segments (GSM-7, 400 characters); keep it within 2"
    ]
    assert warnings_of(f'channels: [email]\nmessages: {{en: {{ask_comment: "{long}"}}}}\n') == []


def test_other_texts_are_rendered_with_their_own_variables() -> None:
    assert warnings_of('messages: {en: {page_score_confirm: "You gave {{ score + 1 - 1 }}"}}\n') == []
    assert warnings_of('messages: {en: {thank_you: "{{ seats * 2 }} thanks"}}\n') == [
        f"{P}.messages.en.thank_you: cannot be rendered for a contact without the properties it uses (the "
        "template uses a missing value: 'seats' is undefined)"
    ]


@pytest.mark.parametrize("key", ["unknown_number", "page_unknown"])
def test_texts_for_people_no_campaign_reached_are_a_warning(key: str) -> None:
    assert warnings_of(f'messages: {{en: {{{key}: "Who are you?"}}}}\n') == [
        f"{P}.messages.en.{key}: is never used: this text goes to people no campaign surveyed, so the shipped "
        "one is sent"
    ]


def test_a_default_locale_without_texts_is_a_warning() -> None:
    assert warnings_of("locale: sv\n") == [
        f"{P}.locale: there are no texts for 'sv' (none in messages, none shipped); contacts will get the "
        "English texts"
    ]
    assert warnings_of("locale: pt-BR\n") == []  # shipped "pt" serves it
    assert warnings_of("locale: de\n") == []


def test_an_incomplete_unshipped_locale_is_a_warning() -> None:
    fields = 'locale: sv\nremind_after: never\nmessages: {sv: {sms: "Hej, STOP", email_subject: "Hej"}}\n'
    assert warnings_of(fields) == [
        f"{P}.messages.sv: has no email_intro, and no texts are shipped for 'sv'; contacts with this locale "
        "get those in the default locale (sv) or English"
    ]
    assert warnings_of("channels: [sms]\n" + fields) == []


# --- JSON ---------------------------------------------------------------------------------------------------


def test_the_example_round_trips_through_json() -> None:
    for definition in parse_campaign_file(PRODUCT_EXAMPLE).campaigns:
        stored = json.loads(json.dumps(definition_to_json(definition)))
        assert definition_from_json(stored) == definition


def test_json_shape() -> None:
    definition = parse_one('remind_after: 12h\nsend_window: {days: [fri, mon], start: "08:30"}\n')
    data = definition_to_json(definition)
    assert data["version"] == 1
    assert data["kind"] == "relationship"
    assert data["remind_after_seconds"] == 43200
    assert data["expires_after_seconds"] == 14 * 86400
    assert data["delay_seconds"] == 0
    assert data["send_window"] == {"days": [0, 4], "start": "08:30", "end": "12:00"}
    assert data["channels"] == ["sms", "email"]
    assert data["messages"] == {}


def test_json_of_other_texts_is_flat_like_the_file() -> None:
    definition = parse_one('messages: {en: {sms: "Hi", ask_comment: "Why?"}, de: {page_thanks: "Danke!"}}\n')
    data = definition_to_json(definition)
    assert data["version"] == 1
    assert data["messages"] == {"en": {"sms": "Hi", "ask_comment": "Why?"}, "de": {"page_thanks": "Danke!"}}
    assert definition_from_json(json.loads(json.dumps(data))) == definition


# What release 1 stored: version 1, and "messages" could only hold the five survey texts.
OLD_JSON = {
    "version": 1,
    "name": "pulse",
    "kind": "relationship",
    "event": None,
    "delay_seconds": 0,
    "interval_days": 90,
    "first_after_days": 0,
    "dedupe_days": 30,
    "min_days_between_surveys": None,
    "audience": {"properties": {"plan": ["pro"]}, "created_before": None, "created_after": None},
    "channels": ["sms", "email"],
    "send_window": {"days": [0, 1, 2, 3], "start": "09:00", "end": "12:00"},
    "timezone": None,
    "remind_after_seconds": 259200,
    "expires_after_seconds": 1209600,
    "sample_rate": 1.0,
    "daily_target": None,
    "locale": "en",
    "brand": "Acme",
    "messages": {"en": {"sms": "Hi {{ first_name }}", "email_subject": "Rate {{ company }}"}, "de": {}},
}


def test_json_stored_before_campaigns_could_set_other_texts_still_loads_and_stays_the_same() -> None:
    definition = definition_from_json(OLD_JSON)
    assert definition.messages == {
        "en": MessageTexts(sms="Hi {{ first_name }}", email_subject="Rate {{ company }}"),
        "de": MessageTexts(),
    }
    assert definition.messages["en"].others == {}
    # Stored again unchanged, so applying the same file reports "unchanged" rather than "updated".
    assert definition_to_json(definition) == OLD_JSON
    same_file = parse_one(
        """\
        audience: {plan: pro}
        brand: Acme
        messages:
          en: {sms: "Hi {{ first_name }}", email_subject: "Rate {{ company }}"}
          de: {}
        """
    )
    assert definition_to_json(same_file) == {**OLD_JSON, "name": "pulse"}


def test_stored_json_with_a_key_the_catalogue_no_longer_has_still_loads() -> None:
    data = {**OLD_JSON, "messages": {"en": {"sms": "Hi", "retired_key": "Old"}}}
    definition = definition_from_json(data)
    assert definition.messages["en"].others == {"retired_key": "Old"}
    assert definition_to_json(definition) == data


def test_json_of_an_unknown_version_is_refused() -> None:
    data = definition_to_json(parse_one())
    data["version"] = 99
    with pytest.raises(ValueError, match="version 99"):
        definition_from_json(data)


def test_definitions_check_the_invariants_the_planner_relies_on() -> None:
    with pytest.raises(ValueError, match="interval_days"):
        CampaignDefinition(name="a", kind=CampaignKind.RELATIONSHIP)
    with pytest.raises(ValueError, match="event"):
        CampaignDefinition(name="a", kind=CampaignKind.TRANSACTIONAL)
    with pytest.raises(ValueError, match="channel"):
        CampaignDefinition(name="a", kind=CampaignKind.RELATIONSHIP, interval_days=1, channels=())


_texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
_durations = st.integers(0, 3650 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes))
_moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_times = st.times().map(lambda moment: moment.replace(second=0, microsecond=0))


@st.composite
def _windows(draw: st.DrawFn) -> SendWindow:
    start, end = sorted(draw(st.lists(_times, min_size=2, max_size=2, unique=True)))
    return SendWindow(draw(st.frozensets(st.integers(0, 6), min_size=1)), start, end)


_audiences = st.builds(
    Audience,
    properties=st.dictionaries(_texts, st.lists(_texts, min_size=1, max_size=3).map(tuple), max_size=3),
    created_before=st.none() | _moments,
    created_after=st.none() | _moments,
)
_OTHER_KEYS = [key for key in KEYS if key not in MESSAGE_FIELDS]
_message_texts = st.builds(
    MessageTexts,
    **{name: st.none() | _texts for name in MESSAGE_FIELDS},
    others=st.dictionaries(st.sampled_from(_OTHER_KEYS), _texts, max_size=4),
)


@st.composite
def _definitions(draw: st.DrawFn) -> CampaignDefinition:
    kind = draw(st.sampled_from(CampaignKind))
    event = draw(
        st.from_regex(EVENT_RE, fullmatch=True)
        if kind is CampaignKind.TRANSACTIONAL
        else st.none() | st.from_regex(EVENT_RE, fullmatch=True)
    )
    interval = draw(
        st.integers(1, 3650) if kind is CampaignKind.RELATIONSHIP else st.none() | st.integers(1, 3650)
    )
    return CampaignDefinition(
        name=draw(st.from_regex(NAME_RE, fullmatch=True)),
        kind=kind,
        event=event,
        delay=draw(_durations),
        interval_days=interval,
        first_after_days=draw(st.integers(0, 3650)),
        dedupe_days=draw(st.integers(0, 3650)),
        min_days_between_surveys=draw(st.none() | st.integers(1, 3650)),
        audience=draw(_audiences),
        channels=tuple(draw(st.permutations(list(Channel)))[: draw(st.integers(1, 2))]),
        send_window=draw(_windows()),
        timezone=draw(st.none() | st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles"])),
        remind_after=draw(st.none() | _durations),
        expires_after=draw(_durations.filter(bool)),
        sample_rate=draw(st.floats(min_value=0, max_value=1, exclude_min=True)),
        daily_target=draw(st.none() | st.integers(1, 10_000_000)),
        locale=draw(st.sampled_from(["en", "de", "pt-BR", "zh-Hans"])),
        brand=draw(st.none() | _texts),
        messages=draw(st.dictionaries(st.sampled_from(["en", "de", "pt-BR"]), _message_texts, max_size=3)),
        promoter_link=draw(
            st.none() | st.sampled_from(["https://g.page/r/abc/review", "http://x.example/r?a=1"])
        ),
    )


@settings(max_examples=200)
@given(_definitions())
def test_any_definition_round_trips_through_json(definition: CampaignDefinition) -> None:
    stored = json.loads(json.dumps(definition_to_json(definition)))
    assert definition_from_json(stored) == definition


# --- promoter_link ------------------------------------------------------------------------------------------


def test_a_promoter_link_is_a_web_address_and_is_stored() -> None:
    definition = parse_one("promoter_link: https://g.page/r/CabcdEAI/review\n")
    assert definition.promoter_link == "https://g.page/r/CabcdEAI/review"
    assert parse_one().promoter_link is None
    stored = json.loads(json.dumps(definition_to_json(definition)))
    assert stored["promoter_link"] == definition.promoter_link
    assert definition_from_json(stored) == definition
    assert "promoter_link" not in definition_to_json(
        parse_one()
    )  # stored definitions without one stay unchanged


@pytest.mark.parametrize(
    "value", ["g.page/r/abc", "javascript:alert(1)", "https://exa mple.com", "https://", "''"]
)
def test_a_promoter_link_that_is_not_a_web_address_is_refused(value: str) -> None:
    problem = only_problem(f"promoter_link: {value}\n")
    assert problem.startswith(f"{P}.promoter_link: ")


def test_a_campaigns_own_closing_may_use_the_promoter_link() -> None:
    definition = parse_one(
        "messages:\n  en: {closing_promoter_link: 'Review us: {{ promoter_link }}'}\n",
    )
    assert definition.messages["en"].get("closing_promoter_link") == "Review us: {{ promoter_link }}"
    parsed = parse_campaign_file(
        campaign_file("messages:\n  en: {closing_promoter: 'Thanks! {{ promoter_link }}'}\n"),
        known_properties=[],
    )
    assert parsed.warnings == []


def test_a_promoter_link_that_no_text_of_the_campaign_would_send_is_a_warning() -> None:
    link = "promoter_link: https://g.page/r/abc/review\n"
    assert (
        warnings_of(link + "messages:\n  en: {closing_promoter_link: 'Review us: {{ promoter_link }}'}\n")
        == []
    )
    assert warnings_of(link + "messages:\n  de: {closing_promoter: 'Danke! {{ promoter_link }}'}\n") == []
    [hidden] = warnings_of(link + "messages:\n  en: {closing_promoter: 'Thanks!'}\n")
    assert hidden.startswith(f"{P}.messages.en.closing_promoter: ")
    assert "promoter_link" in hidden and "closing_promoter_link" in hidden
    [dropped] = warnings_of(link + "messages:\n  en: {closing_promoter_link: 'Thanks!'}\n")
    assert dropped.startswith(f"{P}.messages.en.closing_promoter_link: ") and "{{ promoter_link }}" in dropped
    [unused] = warnings_of("messages:\n  en: {closing_promoter_link: 'Go: {{ promoter_link }}'}\n")
    assert unused.startswith(f"{P}.messages.en.closing_promoter_link: ") and "no promoter_link" in unused
