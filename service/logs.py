"""Logging setup: one handler on the root logger, whose formatter masks personal data (campaigns.privacy) in
everything it writes.

Masking the formatted record, not only its message, covers exception text and tracebacks (a database error
repeats the values it was given), and it covers every logger that reaches the root handler: ours, the
libraries', and uvicorn's (`uvicorn_log_config`).
"""

from __future__ import annotations

import json
import logging
import string
from datetime import UTC, datetime
from typing import Any, TextIO

from campaigns.privacy import mask_email, mask_phone, mask_text

__all__ = [
    "LIBRARY_LOGGERS",
    "MESSAGE_LIMIT",
    "JsonMaskingFormatter",
    "MaskingFormatter",
    "configure_logging",
    "mask_email",
    "mask_phone",
    "mask_text",
    "uvicorn_log_config",
]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MESSAGE_LIMIT = 8_000
"""Characters of a message a line carries; longer ones keep their start and end around a marker."""
TRACEBACK_LIMIT = 32_000
"""The same for exception text and stacks, which are longer and whose end names the error."""

_ADDRESS_CHARACTERS = frozenset(string.ascii_letters + string.digits + "._%+-@")
_ADDRESS_REACH = 320  # longer than any email address (64 + 1 + 253)


class MaskingFormatter(logging.Formatter):
    """Formats a record with its message, exception and stack each capped, then masks the whole text.

    Capping comes first so that masking, linear as it is, never reads more than a few tens of kilobytes per line
    whatever a client sent. The exception is formatted here every time rather than taken from the record's
    cache, which another handler may have filled with the uncapped text.
    """

    def __init__(self, fmt: str = FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        record.message = capped(record.getMessage(), MESSAGE_LIMIT)
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info:
            text += "\n" + capped(self.formatException(record.exc_info), TRACEBACK_LIMIT)
        elif record.exc_text:
            text += "\n" + capped(record.exc_text, TRACEBACK_LIMIT)
        if record.stack_info:
            text += "\n" + capped(self.formatStack(record.stack_info), TRACEBACK_LIMIT)
        return mask_text(text)


class JsonMaskingFormatter(MaskingFormatter):
    """One JSON object per line (`LOG_FORMAT=json`): time, level, logger, event, message, fields, and the
    exception or stack when there is one. Capped and masked like the text lines.

    Every value is masked before serialising, because JSON escapes the whitespace the mask allows inside a
    number ("+49<TAB>151..." becomes "+49\\t151...", which no longer reads as one); the serialised line is
    masked again, so that no field escapes the mask.
    """

    def __init__(self) -> None:
        super().__init__("%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None),
            "message": capped(record.getMessage(), MESSAGE_LIMIT),
            "fields": getattr(record, "fields", None) or {},
        }
        if record.exc_info:
            entry["exception"] = capped(self.formatException(record.exc_info), TRACEBACK_LIMIT)
        elif record.exc_text:
            entry["exception"] = capped(record.exc_text, TRACEBACK_LIMIT)
        if record.stack_info:
            entry["stack"] = capped(self.formatStack(record.stack_info), TRACEBACK_LIMIT)
        # ensure_ascii=False keeps addresses and numbers as they are written, so that the mask recognises them.
        return mask_text(json.dumps(_masked(entry), ensure_ascii=False))


def _masked(value: Any) -> Any:
    """`value` with every text in it masked, keys included; what JSON cannot hold becomes masked text."""
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {_masked(str(k)): _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in value]
    return mask_text(str(value))


def capped(text: str, limit: int) -> str:
    """`text`, or its first and last `limit // 2` characters around a marker saying how many were cut.

    Where a cut falls inside an email address or a number, that word is cut away whole: half an address would
    not be recognised and masked, and would show its other half.
    """
    if len(text) <= limit:
        return text
    head, tail = limit // 2, len(text) - limit // 2
    head = _word_start(text, head)
    tail = _word_end(text, tail)
    return f"{text[:head]}…[{tail - head} characters cut]…{text[tail:]}"


def _word_start(text: str, at: int) -> int:
    """Where the word that `at` cuts starts (`at` itself when it cuts none, or the word is too long)."""
    if text[at] not in _ADDRESS_CHARACTERS:
        return at
    start = at
    while start > 0 and at - start < _ADDRESS_REACH and text[start - 1] in _ADDRESS_CHARACTERS:
        start -= 1
    return at if at - start >= _ADDRESS_REACH else start


def _word_end(text: str, at: int) -> int:
    """Where the word that `at` cuts ends (`at` itself when it cuts none, or the word is too long)."""
    if text[at - 1] not in _ADDRESS_CHARACTERS:
        return at
    end = at
    while end < len(text) and end - at < _ADDRESS_REACH and text[end] in _ADDRESS_CHARACTERS:
        end += 1
    return at if end - at >= _ADDRESS_REACH else end


# Libraries whose INFO lines tell an operator nothing about surveys: at WARNING unless LOG_LEVEL=DEBUG or
# LOG_LIBRARIES=info. (APScheduler logs every job run, Alembic every migration step, httpx and urllib3 every
# request, uvicorn every request it serves.)
LIBRARY_LOGGERS = ("alembic", "apscheduler", "httpx", "httpcore", "urllib3", "uvicorn.access")


def configure_logging(
    level: str = "INFO", stream: TextIO | None = None, *, fmt: str = "text", libraries: str | None = None
) -> None:
    """The root logger writes to `stream` (stderr) through a masking formatter, replacing any other handler.

    `fmt` is "text" (readable lines) or "json" (one object per line). `libraries` is the level of the noisy
    libraries' loggers (LIBRARY_LOGGERS): WARNING by default, `level` itself when that is DEBUG.
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonMaskingFormatter() if fmt == "json" else MaskingFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    library_level = (libraries or ("DEBUG" if level == "DEBUG" else "WARNING")).upper()
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(library_level)
    # APScheduler logs every job run at INFO; our jobs log what they did themselves.
    logging.getLogger("apscheduler.executors").setLevel(
        max(logging.WARNING, logging.getLevelName(library_level))
    )
    # The Twilio client logs every request and response at INFO (numbers included).
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    # slack_sdk logs every Web API request and response body at DEBUG: customers' names and comments, which no
    # mask recognises. Its warnings and errors (rate limits, refused calls) still come through.
    logging.getLogger("slack_sdk").setLevel(logging.INFO)
    # Alembic names each plugin it loads at INFO whenever a command reads the migration scripts.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's `log_config`: its loggers keep no handlers of their own and propagate to the root handler, so
    what it logs (startup, an exception escaping a route, with its traceback) is formatted and masked like the
    rest. Its default config would give them unmasked handlers of their own."""
    loggers = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {name: {"handlers": [], "propagate": True} for name in loggers},
    }
