"""Logging setup with personal data masked (see campaigns.privacy)."""

from __future__ import annotations

import logging

from campaigns.privacy import mask_email, mask_phone, mask_text

__all__ = ["MaskingFilter", "configure_logging", "mask_email", "mask_phone", "mask_text"]


class MaskingFilter(logging.Filter):
    """A safety net under the explicit masking at call sites: rewrites the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every job run at INFO; our jobs log what they did themselves.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    # The Twilio client logs every request and response at INFO (numbers included).
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
