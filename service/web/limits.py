"""How large a request body each route accepts, in bytes (the README's "Request limits" table).

FastAPI counts the bytes of the ASGI receive stream as the body is read (`max_body_size`) and answers 413 at the
first byte over the limit, whether the client sent a Content-Length or a chunked body; a Content-Length over the
limit is refused before a byte is read. Nothing is parsed before that, and what the client still sends is dropped
by the server without being buffered. Each limit is several times what a genuine caller ever sends, so it never
refuses real traffic, and small enough that reading and parsing it costs a few milliseconds.

Checks that need only the headers (the API key, the presence and shape of Twilio's and Slack's signature
headers) run before the body is read at all; see service/web/api/auth.py, twilio.py and slack.py.
"""

from __future__ import annotations

KIB = 1024

DEFAULT_BODY = 64 * KIB
"""Every route without its own limit: /healthz, /docs and the GET pages take no body."""

API_BODY = 1024 * KIB
"""POST /api/v1/contacts and /api/v1/events: one contact (or event) with its properties, as JSON."""

TWILIO_BODY = 64 * KIB
"""Twilio's webhooks: an SMS body is at most 1,600 characters (19 KB once every character is a percent-escaped
emoji) beside some thirty short fields; status callbacks are a dozen fields."""

SLACK_BODY = 512 * KIB
"""POST /slack/events: a slash command is a short form; the largest bodies are button clicks on an alert, which
carry the whole message, form-encoded: its blocks are cut at 2,900 characters each, but CJK text takes up to nine
bytes a character there, which puts an alert with a long comment and its notification text near 300 KB."""

SURVEY_BODY = 64 * KIB
"""The survey page and unsubscribe forms: a score, a comment of at most 5,000 characters, two hidden fields."""
