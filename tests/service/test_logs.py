"""What the service's log handler writes: personal data masked in the message, the exception and the stack, of
every logger, and lines capped before they are masked."""

import io
import logging

from service.logs import MESSAGE_LIMIT, mask_email, mask_phone, mask_text

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
