"""Twilio's webhooks: inbound SMS (`POST /twilio/sms`) and delivery status callbacks (`POST /twilio/status`).

Both are verified with `X-Twilio-Signature`, computed by Twilio over the public URL it called, query string
included, so the URL is rebuilt from PUBLIC_BASE_URL (behind a proxy the app sees another host). A missing or
wrong signature is a 403 and nothing is stored.

Each outbox send gives Twilio a StatusCallback naming our message, `/twilio/status?m=<message id>`; as the
signature covers the query, the id is Twilio's word, not the caller's. A callback for a send whose answer was
lost thus tells us its MessageSid (campaigns.dispatch.reconcile.adopt_provider_id).

Twilio retries a webhook that got no usable answer, but not a 500 (by default), and drops an answer that comes
after its 15 s timeout. So whatever was not committed is answered 503, never 500 or 200, and never with a stack
trace: the database unreachable or locked, a handling that failed (its reply stays stored and is given back to
the next retry or to the sweeper), a duplicate delivery whose handling by another request is still under way.
A reply is handled by the one request that claims it (campaigns.replies.inbound); a retry of a reply already
handled is silent, unless that handling's answer came too late for Twilio: then it takes that answer, if the
sweeper has not texted it yet.

An answer goes into the TwiML only while Twilio can still be waiting for it: until ANSWER_IN_TWIML_WITHIN after
the request came (stamped before the form is read or a thread is free to handle it), and while the connection is
open. Past that it is left to the sweeper, which texts it over the REST API, and the webhook answers with empty
TwiML, so that a Twilio still listening does not send it a second time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from campaigns.dispatch.delivery import apply_status
from campaigns.dispatch.reconcile import adopt_provider_id
from campaigns.privacy import mask_phone
from campaigns.replies.inbound import (
    ANSWER_IN_TWIML_WITHIN,
    TwimlAnswer,
    handle_claimed,
    mark_late,
    new_owner,
    release_claim,
    settled_reply,
    store_and_claim,
)
from service.container import Container
from service.web.api.auth import get_container

log = logging.getLogger(__name__)

router = APIRouter(prefix="/twilio", tags=["twilio"], include_in_schema=False)
TWIML = "application/xml"
_ROW_ID = re.compile(r"[0-9]{1,18}")  # our message id in a StatusCallback URL (fits a 64-bit integer)
# Twilio ignores Retry-After, but proxies and operators' own retries read it.
RETRY_AFTER_SECONDS = "5"
# An inbound SMS has some thirty fields, forty more with ten MMS media; a status callback about a dozen.
_MAX_FIELDS = 200
# Webhooks handled at once on PostgreSQL (see twilio_threads).
POSTGRES_TWILIO_THREADS = 8
T = TypeVar("T")


async def verified_form(
    request: Request, container: Annotated[Container, Depends(get_container)]
) -> dict[str, str]:
    """The webhook's form fields, or a 403 when the signature does not match.

    Without an auth token or a signature header nothing can match, so the body is not even read.
    """
    token = container.settings.twilio_auth_token
    signature = request.headers.get("x-twilio-signature", "")
    if not token or not signature:
        raise Forbidden
    fields = await request.form(max_files=0, max_fields=_MAX_FIELDS)
    form = {key: value for key, value in fields.multi_items() if isinstance(value, str)}
    url = container.settings.public_base_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not RequestValidator(token).validate(url, form, signature):
        raise Forbidden
    # Checked as signed; handed on as storable, names as well as values, to every handler.
    return {_storable(key): _storable(value) for key, value in form.items()}


class Forbidden(Exception):
    pass


async def forbidden(_request: Request, _error: Exception) -> Response:
    return PlainTextResponse("invalid or missing X-Twilio-Signature", status_code=403)


Form = Annotated[dict[str, str], Depends(verified_form)]


async def arrival(request: Request) -> datetime:
    """When the request came: in the event loop, before its form is read and before it waits for a thread."""
    container: Container = request.app.state.container
    return container.clock.now()


def twilio_threads(dialect: str) -> ThreadPoolExecutor:
    """The threads that store and handle Twilio's webhooks, one pool per app (`app.state.twilio_threads`).

    SQLite takes one writer at a time, and a connection that finds the database locked polls for it in sleeps
    of up to 100 ms (SQLite's busy handler): webhooks handled side by side would mostly sleep, and the slowest
    would wait seconds. So one thread on SQLite, where they queue in order and each starts the moment the one
    before has committed; on PostgreSQL a few, fewer than the connection pool, as more threads than cores only
    contend for the interpreter.
    """
    workers = 1 if dialect == "sqlite" else POSTGRES_TWILIO_THREADS
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="twilio")


async def _in_twilio_threads(request: Request, work: Callable[[], T]) -> T:
    """`work` in the webhooks' threads. Shielded: a request cancelled meanwhile (a server shutting down, a
    client gone) does not take work already handed over back out of the queue; it runs to its commit."""
    threads: ThreadPoolExecutor = request.app.state.twilio_threads
    return await asyncio.shield(asyncio.get_running_loop().run_in_executor(threads, work))


@router.post("/sms")
async def inbound_sms(
    arrived: Annotated[datetime, Depends(arrival)],
    form: Form,
    request: Request,
    container: Annotated[Container, Depends(get_container)],
) -> Response:
    answer_by = arrived + ANSWER_IN_TWIML_WITHIN
    sid = form.get("MessageSid", "")
    if not sid or not form.get("From"):
        return _twiml(None)
    hand = AnswerHand()
    try:
        reply = await _in_twilio_threads(request, partial(_reply_in_hand, hand, container, form, answer_by))
        if isinstance(reply, Response):
            return reply
        if reply is None:
            return _twiml(None)
        in_time = container.clock.now() <= answer_by and not await request.is_disconnected()
        hand.given()
    except asyncio.CancelledError:
        orphan = hand.request_gone()
        if orphan is not None:
            _mark_late_elsewhere(container, sid, orphan, request.app.state.twilio_threads)
        raise
    if in_time:
        return _twiml(reply.text)
    return await _in_twilio_threads(request, partial(_too_late, container, sid, reply))


class AnswerHand:
    """Who sees a committed TwiML answer out: the request (in its TwiML, or marked late for the sweeper), or,
    once the request is gone (cancelled: a server shutting down, a client gone), whoever holds it then.

    The handling's thread hands the answer over. A request cancelled before that leaves it to the thread, which
    marks it late itself (the event loop may be stopping); one cancelled after it, before it gave the answer a
    way out, marks it late. Once either way: the hand-over and the cancellation meet under one lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answer: TwimlAnswer | None = None
        self._gone = False

    def handed(self, answer: TwimlAnswer) -> bool:
        """The thread's hand-over; True: the request is gone, and the thread marks the answer late."""
        with self._lock:
            self._answer = answer
            return self._gone

    def given(self) -> None:
        """The request gives the answer its way out now (its TwiML, or the late marking it waits for)."""
        with self._lock:
            self._answer = None

    def request_gone(self) -> TwimlAnswer | None:
        """The request is cancelled: the answer handed over and not given its way out, for the caller to mark."""
        with self._lock:
            self._gone = True
            answer, self._answer = self._answer, None
            return answer


def _reply_in_hand(
    hand: AnswerHand, container: Container, form: dict[str, str], answer_by: datetime
) -> TwimlAnswer | Response | None:
    reply = _reply(container, form, answer_by)
    if isinstance(reply, TwimlAnswer) and hand.handed(reply):
        _too_late(container, form["MessageSid"], reply)
    return reply


def _mark_late_elsewhere(
    container: Container, sid: str, answer: TwimlAnswer, threads: ThreadPoolExecutor
) -> None:
    """Marks `answer` late off the event loop: in the webhooks' threads, or in a thread of its own once they
    are shut down (the server is stopping; the interpreter waits for that thread)."""
    try:
        threads.submit(_too_late, container, sid, answer)
    except RuntimeError:
        threading.Thread(target=_too_late, args=(container, sid, answer), name="twilio-late").start()


def _reply(container: Container, form: dict[str, str], answer_by: datetime) -> TwimlAnswer | Response | None:
    """Store, claim and handle one inbound SMS: its answer for the TwiML, or the response that says why not."""
    sid, sender, body = form["MessageSid"], form["From"], form.get("Body", "")
    owner = new_owner("webhook")
    try:
        message_id, claimed = store_and_claim(
            container.db, sid=sid, sender=sender, body=body, raw=form, owner=owner, now=container.clock.now()
        )
    except SQLAlchemyError as error:
        return _not_committed(f"inbound SMS {sid} from {mask_phone(sender)} not stored", error)
    if not claimed:
        return _duplicate(container, message_id, sid, answer_by)
    try:
        handled = handle_claimed(
            container.db, message_id, owner=owner, clock=container.clock, answer_by=answer_by
        )
    except Exception as error:
        _give_back(container, message_id, owner)
        return _not_committed(f"inbound SMS {sid} stored but its handling failed", error)
    if handled is None:  # our claim went stale and was taken over: the taker answers
        return _duplicate(container, message_id, sid, answer_by)
    if handled.answer is not None and handled.twiml is None:
        log.warning("the answer to inbound SMS %s was ready too late for Twilio; it is texted over REST", sid)
    return handled.twiml


def _duplicate(
    container: Container, message_id: int, sid: str, answer_by: datetime
) -> TwimlAnswer | Response | None:
    """Another request or sweep claimed this message: 503 until its handling is committed, then its answer."""
    try:
        settled = settled_reply(container.db, message_id, clock=container.clock, answer_by=answer_by)
    except SQLAlchemyError as error:
        return _not_committed(f"inbound SMS {sid}: could not read its handling", error)
    if not settled.handled:
        log.info("inbound SMS %s is being handled by another request; answering 503 so Twilio retries", sid)
        return _unavailable()
    if settled.twiml is not None:
        log.info("inbound SMS %s was a retry of one whose answer did not reach Twilio; giving it now", sid)
    else:
        log.info("inbound SMS %s was a retry; already handled", sid)
    return settled.twiml


def _too_late(container: Container, sid: str, answer: TwimlAnswer) -> Response:
    """Twilio cannot be waiting for `answer` any more (the time is up, or it hung up): the sweeper texts it.

    If the database cannot take it back, the TwiML carries it anyway: the last chance it has to go out.
    """
    try:
        mark_late(container.db, answer, now=container.clock.now())
    except SQLAlchemyError as error:
        log.warning(
            "the answer to inbound SMS %s is late and could not be left to the sweeper (%s)",
            sid,
            type(error).__name__,
        )
        return _twiml(answer.text)
    log.warning("the answer to inbound SMS %s is too late for Twilio's webhook; it is texted over REST", sid)
    return _twiml(None)


def _give_back(container: Container, message_id: int, owner: str) -> None:
    try:
        release_claim(container.db, message_id, owner=owner)
    except SQLAlchemyError:
        log.warning(
            "could not give inbound message %s back; its claim goes stale and is taken over", message_id
        )


@router.post("/status")
async def status_callback(
    form: Form, request: Request, container: Annotated[Container, Depends(get_container)]
) -> Response:
    named = request.query_params.get("m", "")
    message_id = int(named) if _ROW_ID.fullmatch(named) else None
    return await _in_twilio_threads(request, partial(_apply_status, container, form, message_id))


def _apply_status(container: Container, form: dict[str, str], message_id: int | None) -> Response:
    sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if sid and status:
        try:
            with container.db.transaction() as session:
                now = container.clock.now()
                if message_id is not None:
                    adopt_provider_id(message_id, sid, now=now, session=session)
                apply_status(sid, status, form.get("ErrorCode") or None, now=now, session=session)
        except SQLAlchemyError as error:
            return _not_committed(f"status callback for {sid} not applied", error)
    return Response(status_code=204)


def _not_committed(what: str, error: Exception) -> Response:
    """Nothing of this delivery is committed (or its handling is not): 503, so that Twilio delivers it again."""
    if isinstance(error, SQLAlchemyError):
        log.warning("%s: the database failed (%s); answering 503", what, type(error).__name__)
    else:
        log.exception("%s; answering 503", what)
    return _unavailable()


def _unavailable() -> Response:
    return PlainTextResponse(
        "temporarily unavailable, retry later", status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS}
    )


def _storable(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters; a phone can still send them."""
    return value.replace("\x00", "\ufffd")


def _twiml(text: str | None) -> Response:
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(str(response), media_type=TWIML)
