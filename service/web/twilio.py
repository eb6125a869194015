"""Twilio's webhooks: inbound SMS (`POST /twilio/sms`) and delivery status callbacks (`POST /twilio/status`).

Both are verified with `X-Twilio-Signature`, computed by Twilio over the public URL it called, so the URL is
rebuilt from PUBLIC_BASE_URL (behind a proxy the app sees another host). A missing or wrong signature is a 403
and nothing is stored. The raw inbound message is stored before anything else, and a retried delivery (the same
MessageSid) is answered without being processed twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from campaigns.dispatch.delivery import apply_status
from campaigns.privacy import mask_phone
from campaigns.replies.conversation import Answer, InboundSms, handle_inbound
from service.container import Container
from service.web.api.auth import get_container
from storage.enums import Channel, Direction, InboundState, MessagePurpose, SendState
from storage.tables import Message

log = logging.getLogger(__name__)

router = APIRouter(prefix="/twilio", tags=["twilio"], include_in_schema=False)
TWIML = "application/xml"


async def verified_form(
    request: Request, container: Annotated[Container, Depends(get_container)]
) -> dict[str, str]:
    """The webhook's form fields, or a 403 when the signature does not match."""
    form = {key: value for key, value in (await request.form()).multi_items() if isinstance(value, str)}
    token = container.settings.twilio_auth_token
    signature = request.headers.get("x-twilio-signature", "")
    url = container.settings.public_base_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not token or not signature or not RequestValidator(token).validate(url, form, signature):
        raise Forbidden
    return form


class Forbidden(Exception):
    pass


async def forbidden(_request: Request, _error: Exception) -> Response:
    return PlainTextResponse("invalid or missing X-Twilio-Signature", status_code=403)


Form = Annotated[dict[str, str], Depends(verified_form)]


@router.post("/sms")
def inbound_sms(form: Form, container: Annotated[Container, Depends(get_container)]) -> Response:
    form = {key: _storable(value) for key, value in form.items()}
    sid, sender, body = form.get("MessageSid", ""), form.get("From", ""), form.get("Body", "")
    if not sid or not sender:
        return _twiml(None)
    now = container.clock.now()
    stored = _store_inbound(container, sid=sid, sender=sender, body=body, raw=form)
    if stored is None:
        log.info("inbound SMS %s from %s was a retry; already handled", sid, mask_phone(sender))
        return _twiml(None)
    try:
        answer = _handle(container, InboundSms(sender, body, stored), now)
    except IntegrityError:
        # Two messages of one conversation at the same instant (SQLite does not lock the invitation): the
        # other one has committed by now, so handling this one again sees it.
        answer = _handle(container, InboundSms(sender, body, stored), now)
    return _twiml(answer.text if answer else None)


def _handle(container: Container, sms: InboundSms, now: datetime) -> Answer | None:
    with container.db.transaction() as session:
        answer = handle_inbound(sms, now=now, session=session)
        inbound = session.get(Message, sms.message_id)
        if inbound is not None:
            inbound.inbound_state = InboundState.PROCESSED
        if answer is not None:
            session.add(
                Message(
                    direction=Direction.OUTBOUND,
                    channel=Channel.SMS,
                    purpose=answer.purpose,
                    invitation_id=answer.invitation_id,
                    address=sms.from_number,
                    body=answer.text,
                    send_state=SendState.TWIML,
                    created_at=now,
                    updated_at=now,
                )
            )
    return answer


@router.post("/status")
def status_callback(form: Form, container: Annotated[Container, Depends(get_container)]) -> Response:
    sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if sid and status:
        with container.db.transaction() as session:
            apply_status(
                sid, status, form.get("ErrorCode") or None, now=container.clock.now(), session=session
            )
    return Response(status_code=204)


def _store_inbound(
    container: Container, *, sid: str, sender: str, body: str, raw: dict[str, Any]
) -> int | None:
    """Store the raw message first of all; its id, or None when a retry of a message already processed.

    A message stored but not processed (the process stopped in between) is processed on Twilio's retry.
    """
    now = container.clock.now()
    try:
        with container.db.transaction() as session:
            seen = session.scalar(
                select(Message).where(Message.channel == Channel.SMS, Message.provider_id == sid)
            )
            if seen is not None:
                return None if seen.inbound_state is InboundState.PROCESSED else seen.id
            message = Message(
                direction=Direction.INBOUND,
                channel=Channel.SMS,
                purpose=MessagePurpose.REPLY,
                address=sender,
                body=body,
                provider_id=sid,
                inbound_state=InboundState.RECEIVED,
                raw=raw,
                created_at=now,
                updated_at=now,
            )
            session.add(message)
            session.flush()
            return message.id
    except IntegrityError:
        return None  # the same retry arrived concurrently


def _storable(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters; a phone can still send them."""
    return value.replace("\x00", "\ufffd")


def _twiml(text: str | None) -> Response:
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(str(response), media_type=TWIML)
