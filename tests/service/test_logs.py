"""What the service's log handler writes: personal data masked in the message, the exception and the stack, of
every logger, and lines capped before they are masked."""

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from campaigns.events import Event, emit
from service.logs import LIBRARY_LOGGERS, MESSAGE_LIMIT, configure_logging, mask_email, mask_phone, mask_text

PHONE, EMAIL = "+14155550123", "jane.doe@example.com"


def test_masks_keep_enough_to_tell_apart() -> None:
    assert mask_phone("+14155550123") == "+1••••••••23"
    assert mask_email("jane.doe@example.com") == "j•••@example.com"
    assert mask_phone(None) == mask_email("") == "-"


def test_free_text_is_masked() -> None:
    text = mask_text("sent to +49 151 12345678 and jane@example.com")
    assert "12345678" not in text and "jane@" not in text
    assert "example.com" in text


def test_the_message_is_masked(service_log: io.StringIO) -> None:
    logging.getLogger("nps.test").info("inbound from %s", PHONE)
    assert PHONE not in service_log.getvalue()
    assert "INFO nps.test: inbound from +1••••••••23" in service_log.getvalue()


def _lookup(phone: str, email: str) -> None:
    raise LookupError(f"no contact with phone {phone} or email {email}")


def test_exception_text_and_traceback_are_masked_for_any_logger(service_log: io.StringIO) -> None:
    for name in ("nps.test", "sqlalchemy.engine", "uvicorn.error"):
        try:
            _lookup(PHONE, EMAIL)
        except LookupError:
            logging.getLogger(name).exception("lookup failed")
    output = service_log.getvalue()
    assert output.count("Traceback (most recent call last)") == 3
    assert output.count("LookupError: no contact with phone +1••••••••23 or email j•••@example.com") == 3
    assert PHONE not in output and EMAIL not in output


def test_the_stack_is_masked(service_log: io.StringIO) -> None:
    logging.getLogger("nps.test").warning("where", stack_info=True)  # the stack shows this line: +14155550123
    output = service_log.getvalue()
    assert "Stack (most recent call last)" in output
    assert "+1••••••••23" in output and PHONE not in output


def test_a_huge_message_is_cut_with_a_marker_before_it_is_masked(service_log: io.StringIO) -> None:
    half = MESSAGE_LIMIT // 2
    # 20 MB, with an address across the point where the head is cut: it is dropped whole, not shown in part.
    body = "a" * (half - 10) + f" {EMAIL} " + "a@" * 10_000_000
    logging.getLogger("nps.test").info("body: %s", body)
    output = service_log.getvalue()
    assert len(output) < MESSAGE_LIMIT + 200
    assert "characters cut]" in output
    assert "jane" not in output


def _configured(fmt: str = "text", level: str = "INFO", libraries: str | None = None) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, stream=stream, fmt=fmt, libraries=libraries)
    return stream


@pytest.fixture
def restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in (*LIBRARY_LOGGERS, "apscheduler.executors")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_json_lines_parse_and_carry_the_event_and_its_fields_masked(restored: None) -> None:
    stream = _configured("json")
    emit(logging.getLogger("campaigns.dispatch.dispatcher"), Event.SURVEY_SENT, campaign="pulse", to=PHONE)
    logging.getLogger("nps.test").warning("free text about %s", EMAIL)
    try:
        _lookup(PHONE, EMAIL)
    except LookupError:
        logging.getLogger("nps.test").exception("lookup failed")
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(entries) == 3  # a traceback stays inside its line
    sent, free, failed = entries
    assert sent["event"] == "survey.sent" and sent["level"] == "INFO"
    assert sent["logger"] == "campaigns.dispatch.dispatcher"
    assert sent["fields"] == {"campaign": "pulse", "to": "+1••••••••23"}
    assert sent["message"] == "survey sent: campaign=pulse to=+1••••••••23"
    assert datetime.fromisoformat(sent["time"]).tzinfo is not None
    assert (
        free["event"] is None
        and free["fields"] == {}
        and free["message"] == "free text about j•••@example.com"
    )
    assert "LookupError" in failed["exception"] and PHONE not in stream.getvalue()
    assert EMAIL not in stream.getvalue()


def test_text_is_the_default_and_reads_as_words(restored: None) -> None:
    stream = _configured()
    emit(logging.getLogger("nps.test"), Event.OPTED_OUT, channel="sms", address=PHONE, source="sms-keyword")
    assert (
        stream.getvalue()
        .rstrip()
        .endswith("INFO nps.test: opted out: channel=sms address=+1••••••••23 source=sms-keyword")
    )


def test_library_noise_is_at_warning_unless_asked(restored: None) -> None:
    stream = _configured()
    for name in ("alembic.runtime.migration", "apscheduler.scheduler", "httpx", "uvicorn.access"):
        logging.getLogger(name).info("noise from %s", name)
    assert stream.getvalue() == ""
    stream = _configured(libraries="INFO")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade")
    logging.getLogger("apscheduler.executors.default").info("job ran")  # every tick: never at INFO
    assert "Running upgrade" in stream.getvalue() and "job ran" not in stream.getvalue()
    stream = _configured(level="DEBUG")
    logging.getLogger("httpx").debug("request")
    assert "request" in stream.getvalue()


@pytest.mark.parametrize("separator", ["\t", "\n"])
def test_json_log_masks_a_number_split_by_whitespace_that_json_escapes(
    separator: str, restored: None
) -> None:
    """The text format masks "+49<TAB>15112345678" ([\\s.-] separators); in JSON the tab would become the two
    characters backslash-t, so the values are masked before they are serialised."""
    number = f"+49{separator}15112345678"
    for fmt in ("text", "json"):
        stream = io.StringIO()
        configure_logging("INFO", stream, fmt=fmt)
        try:
            raise ValueError(f"could not send to {number}")
        except ValueError:
            logging.getLogger("attack").exception("send failed")
        out = stream.getvalue()
        assert "15112345678" not in out, (fmt, out)
    configure_logging("INFO")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_percent_encoded_email_in_a_logged_url_is_masked(fmt: str, restored: None) -> None:
    """A logged request URL (urllib3/httpx at LOG_LEVEL=DEBUG, an error quoting its URL) carries an address as
    `ana.lima%40example.com`; it is masked like `%2B` numbers are."""
    stream = io.StringIO()
    configure_logging("INFO", stream, fmt=fmt)
    logging.getLogger("attack").warning(
        "GET %s failed", "https://api.example.com/lookup?email=ana.lima%40example.com&phone=%2B4915112345678"
    )
    configure_logging("INFO")
    out = stream.getvalue()
    assert "4915112345678" not in out
    assert "ana.lima%40example.com" not in out, out
