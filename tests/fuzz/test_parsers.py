"""The fuzz step: every parser that reads outside text answers with its result or its documented error, only.

Reply parser (an SMS body) -> a Reply, never an exception; `/nps` grammar -> a query or GrammarError; a contacts
CSV -> rows, RowProblem and ContactValidationError, or CsvFileError for the file; a campaign file -> campaigns or
CampaignFileError; Twilio's webhook forms, through the app -> 200/204 when signed, 403 when not, never a 5xx.
Each finding is kept as an explicit @example of the property that found it.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.query.grammar import GrammarError, parse
from campaigns.contacts.csv_file import CsvFileError, CsvRow, RowProblem, read_contacts_csv
from campaigns.contacts.validation import ContactInput, ContactValidationError, validate_contact
from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.problems import CampaignFileError
from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.replies.parser import Help, OptIn, OptOut, Score, Unclear, parse_reply
from service.container import Container
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL
from tests.fixtures.survey import csrf_of, responses, survey
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.twilio_webhooks import (
    inbound_sms_params,
    new_message_sid,
    post_signed,
    post_unsigned,
    status_callback_params,
)

FUZZ = settings(max_examples=200, deadline=None)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

# Any code point, lone surrogates (what undecodable bytes become) and control characters included.
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
ANY_TEXT = st.text(st.one_of(st.characters(), SURROGATES), max_size=300)
ODD_PIECES = st.sampled_from(
    ["\x00", "\r\n", "\n", "\t", '"', "'", ",", ";", "\ufeff", "\u200b", "\u202e", "\ud800", "%", "&", "=", "<", ">",
     "{{", "}}", "{%", "#", ":", "- ", "[", "]", "?", "*", "&a", "!!python/object", "9", "10/10", "STOP", "九"]
)  # fmt: skip
TEXT = st.one_of(ANY_TEXT, st.lists(st.one_of(ODD_PIECES, ANY_TEXT), max_size=12).map("".join))


# --- SMS replies ----------------------------------------------------------------------------------------------


@FUZZ
@given(TEXT, st.one_of(st.none(), st.sampled_from(["en", "fr", "zh-Hant", "pt-BR", "xx", ""]), ANY_TEXT))
def test_a_reply_is_always_read_as_a_reply(text: str, locale: str | None) -> None:
    assert isinstance(parse_reply(text, locale), Score | OptOut | OptIn | Help | Unclear)


# --- /nps -----------------------------------------------------------------------------------------------------

ZONES = st.sampled_from(
    [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago")]
)


@FUZZ
@given(TEXT, ZONES, st.datetimes(datetime(1971, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_an_nps_command_is_a_query_or_a_grammar_error(text: str, tz: ZoneInfo, now: datetime) -> None:
    try:
        parse(text, now, tz)
    except GrammarError as error:
        assert error.message and error.example.startswith("/nps")


# --- contacts CSV ---------------------------------------------------------------------------------------------

COLUMNS = st.sampled_from(
    ["external_id", "name", "phone", "email", "locale", "timezone", "plan", "Phone", "properties", ""]
)
CELLS = st.one_of(
    TEXT,
    st.sampled_from(
        ["+4915112345678", "030 1234567", "ana@example.com", "de", "Europe/Berlin", "c1", "", " "]
    ),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Mostly CSV-shaped bytes: a header of known and odd columns, rows of odd cells, odd encodings."""
    delimiter = draw(st.sampled_from([",", ";"]))
    header = draw(st.lists(st.one_of(COLUMNS, TEXT), min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(CELLS, max_size=8), max_size=6))

    def line(cells: list[str]) -> str:
        quote = draw(st.booleans())
        return delimiter.join(f'"{cell}"' if quote else cell for cell in cells)

    text = "\n".join(line(cells) for cells in [header, *rows])
    data = text.encode("utf-8", errors=draw(st.sampled_from(["surrogatepass", "replace"])))
    return (
        draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"]))
        + data
        + draw(st.sampled_from([b"", b"\xe9\n"]))
    )


@FUZZ
@given(st.one_of(csv_files(), st.binary(max_size=300)), st.sampled_from([None, "DE", "us"]))
@example(b"external_id,name,email\nc1,Ana\x00Lima,ana@example.com\n", None)  # NUL: PostgreSQL cannot store it
@example(b"external_id,plan\nc1,pro\x00\n", None)
def test_a_contacts_file_is_rows_and_problems_or_a_file_error(data: bytes, region: str | None) -> None:
    try:
        items = list(read_contacts_csv(io.BytesIO(data)))
    except CsvFileError as error:
        assert str(error)
        return
    for item in items:
        assert isinstance(item, CsvRow | RowProblem)
        if isinstance(item, CsvRow):
            try:
                contact = validate_contact(item.values, default_region=region)
            except ContactValidationError as error:
                assert error.errors
            else:
                assert storable(contact)


def storable(contact: ContactInput) -> bool:
    """What both engines store: no NUL (PostgreSQL refuses it in text and JSONB), no lone surrogates."""
    texts = [
        contact.external_id,
        contact.name,
        contact.phone,
        contact.email,
        contact.locale,
        contact.timezone,
    ]
    texts += [*contact.properties, *contact.properties.values()]
    return all(
        "\x00" not in text and not any("\ud800" <= char <= "\udfff" for char in text)
        for text in texts
        if text is not None
    )


# --- campaign files -------------------------------------------------------------------------------------------

FIELDS = st.sampled_from(
    ["name", "kind", "event", "delay", "interval_days", "first_after_days", "dedupe_days", "min_days_between_surveys",
     "audience", "channels", "send_window", "timezone", "remind_after", "expires_after", "sample_rate", "daily_target",
     "locale", "brand", "messages", "slack_channel", "follow_up", "days", "start", "end", "en", "de", "sms", "plan"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT.filter(lambda text: not any("\ud800" <= char <= "\udfff" for char in text)),
    st.sampled_from(["relationship", "transactional", "sms", "email", "14d", "3d", "never", "09:00", "mon-thu",
                     "Europe/Berlin", "25%", "detractor", "{{ first_name }}", "{{ ''.__class__ }}", "#nps"]),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FIELDS, inner, max_size=5),
    max_leaves=20,
)
CAMPAIGNS = st.dictionaries(FIELDS, VALUES, max_size=10)


@FUZZ
@given(
    st.one_of(
        TEXT, st.builds(lambda items: yaml.safe_dump({"campaigns": items}), st.lists(CAMPAIGNS, max_size=3))
    )
)
def test_a_campaign_file_is_campaigns_or_a_file_error(text: str) -> None:
    try:
        parse_campaign_file(text)
    except CampaignFileError as error:
        assert error.problems and all(problem.message for problem in error.problems)


# --- Twilio's webhooks, through the app -----------------------------------------------------------------------

FORM_TEXT = st.text(st.characters(codec="utf-8"), max_size=200)  # what a form can carry: any UTF-8 text
PHONES = st.one_of(st.sampled_from(["+4915112345678", "+15005550006", "", "client:ana", "+"]), FORM_TEXT)
STATUSES = st.one_of(
    st.sampled_from(["queued", "sent", "delivered", "undelivered", "failed", "read", "canceled", ""]),
    FORM_TEXT,
)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
EXTRA_FIELDS = st.dictionaries(FORM_TEXT.filter(bool), FORM_TEXT, max_size=4)
WEBHOOK = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@WEBHOOK
@given(sender=PHONES, body=FORM_TEXT, sid=st.one_of(st.just(""), FORM_TEXT), extra=EXTRA_FIELDS)
@example(sender="+4915112345678\x00", body="9\x00", sid="SM\x00", extra={"\x00": "\x00"})
def test_a_signed_inbound_sms_of_any_content_is_answered(
    app: TestClient, sender: str, body: str, sid: str, extra: dict[str, str]
) -> None:
    params = {**extra, **inbound_sms_params(sender, FROM_NUMBER, body, sid or new_message_sid())}
    params["MessageSid"] = sid or params["MessageSid"]
    response = post_signed(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")


@WEBHOOK
@given(
    sid=st.one_of(st.just(""), FORM_TEXT),
    status=STATUSES,
    code=st.one_of(st.none(), FORM_TEXT),
    extra=EXTRA_FIELDS,
)
@example(sid="SM\x00", status="delivered", code=None, extra={})
@example(sid="SM1", status="undelivered\x00", code="3\x00", extra={})
def test_a_signed_status_callback_of_any_content_is_answered(
    app: TestClient, sid: str, status: str, code: str | None, extra: dict[str, str]
) -> None:
    params = {**extra, **status_callback_params(sid, status, "+4915112345678", FROM_NUMBER, error_code=code)}
    response = post_signed(app, f"{PUBLIC_URL}/twilio/status", params, DEFAULT_AUTH_TOKEN)
    assert response.status_code == 204, response.text


@WEBHOOK
@given(path=st.sampled_from(["/twilio/sms", "/twilio/status"]), params=EXTRA_FIELDS, signature=HEADER_TEXT)
def test_a_webhook_without_a_valid_signature_is_refused(
    app: TestClient, path: str, params: dict[str, str], signature: str
) -> None:
    url = f"{PUBLIC_URL}{path}"
    forged = post_signed(app, url, params, DEFAULT_AUTH_TOKEN, signature=signature)
    assert forged.status_code == 403
    assert post_unsigned(app, url, params).status_code == 403


# --- the survey page's form, through the app ------------------------------------------------------------------


@WEBHOOK
@given(
    score=st.one_of(st.sampled_from(["0", "9", "10", "", "11"]), FORM_TEXT), comment=FORM_TEXT, step=FORM_TEXT
)
@example(score="9", comment="gut\x00", step="comment")  # NUL: PostgreSQL cannot store it (a 500 there)
def test_a_survey_form_of_any_content_is_answered_and_stored_as_text(
    engine: Container, dispatcher: Dispatcher, app: TestClient, score: str, comment: str, step: str
) -> None:
    token = survey_token(engine, dispatcher)
    page = app.get(f"/s/{token}").text
    csrf = csrf_of(page) if 'name="csrf"' in page else ""  # once answered, the page is a thank-you
    response = app.post(f"/s/{token}", data={"csrf": csrf, "score": score, "comment": comment, "step": step})
    assert response.status_code < 500
    assert response.headers["content-type"].startswith("text/html")
    for stored in responses(engine):
        assert "\x00" not in (stored.comment or "")


_TOKENS: dict[int, str] = {}


def survey_token(engine: Container, dispatcher: Dispatcher) -> str:
    """One survey for the whole run of a property (hypothesis reuses the test's fixtures): its first example
    answers it, later ones get the thank-you page, as a second tab would."""
    key = id(engine)
    if key not in _TOKENS:
        _TOKENS[key] = survey(engine, dispatcher)
    return _TOKENS[key]
