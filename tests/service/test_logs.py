import logging

import pytest

from service.logs import MaskingFilter, mask_email, mask_phone, mask_text


def test_masks_keep_enough_to_tell_apart() -> None:
    assert mask_phone("+14155550123") == "+1••••••••23"
    assert mask_email("jane.doe@example.com") == "j•••@example.com"
    assert mask_phone(None) == mask_email("") == "-"


def test_free_text_is_masked() -> None:
    text = mask_text("sent to +49 151 12345678 and jane@example.com")
    assert "12345678" not in text and "jane@" not in text
    assert "example.com" in text


def test_log_records_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.masking")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("inbound from %s", "+14155550123")
    assert "+14155550123" not in caplog.text
    assert "+1••••••••23" in caplog.text
