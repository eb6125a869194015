"""After the whole loop has run, every enum-typed column holds only members of its enum, read back raw.

The flow touches each writer of those columns: invitations by SMS and email (one SMS number refused for good,
so it falls back to email), a status callback that arrives before its message is known (held) and one that
is applied, a clarification, a score that raises a detractor alert, a comment, a STOP, a reminder and expiry.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Enum, text

from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.dispatch.expiry import expire_invitations
from service.container import Container
from storage.enums import MessagePurpose
from storage.tables import Base
from tests.fixtures.engine import FROM_NUMBER, PUBLIC_URL, add_contacts, apply_yaml, plan
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.standins.smtp import SmtpSink
from tests.standins.twilio_webhooks import inbound_sms_params, post_signed, status_callback_params

CAMPAIGN = """
campaigns:
  - name: pulse
    kind: relationship
    interval_days: 1
    channels: [sms, email]
    brand: Acme
    remind_after: 3d
    expires_after: 14d
"""
ANA = {"external_id": "ana", "name": "Ana Lima", "phone": "+4915112345678", "timezone": "UTC"}
BO = {"external_id": "bo", "name": "Bo Berg", "email": "bo@example.com", "timezone": "UTC"}
CY = {"external_id": "cy", "phone": "+4915112345679", "email": "cy@example.com", "timezone": "UTC"}


def sms(app: TestClient, body: str, sender: str = ANA["phone"]) -> None:
    params = inbound_sms_params(sender, FROM_NUMBER, body)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN).status_code == 200


def callback(app: TestClient, sid: str, status: str) -> None:
    params = status_callback_params(sid, status, ANA["phone"], FROM_NUMBER)
    assert post_signed(app, f"{PUBLIC_URL}/twilio/status", params, DEFAULT_AUTH_TOKEN).status_code == 204


def test_every_enum_column_holds_only_members_after_the_whole_loop(
    engine: Container,
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    smtp_sink: SmtpSink,
    app: TestClient,
) -> None:
    add_contacts(engine, [ANA, BO, CY])
    apply_yaml(engine, CAMPAIGN)
    plan(engine)
    fake_twilio.fail_to(CY["phone"], 21211)
    callback(app, "SM" + "0" * 32, "queued")  # for a message we do not know yet: held
    assert dispatcher.drain().sent == 3
    callback(app, fake_twilio.messages()[0].sid, "delivered")
    sms(app, "banana")
    sms(app, "3")
    sms(app, "Too slow")
    engine.clock.advance(days=3)  # type: ignore[attr-defined]
    assert dispatcher.drain(MessagePurpose.REMINDER).sent == 2  # Bo and Cy, by email
    sms(app, "STOP", sender=CY["phone"])
    engine.clock.advance(days=11)  # type: ignore[attr-defined]
    assert expire_invitations(dispatcher) == 2

    outside, written = {}, set()
    with engine.db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, Enum):
                    continue
                allowed = set(column.type.enums)
                stored = connection.execute(
                    text(f"SELECT DISTINCT {column.name} FROM {table.name}")
                ).scalars()
                values = {value for value in stored if value is not None}
                unknown = values - allowed
                if values:
                    written.add(f"{table.name}.{column.name}")
                if unknown:
                    outside[f"{table.name}.{column.name}"] = unknown
    assert outside == {}
    assert {
        "messages.purpose",
        "messages.send_state",
        "messages.delivery_status",
        "messages.inbound_state",
        "responses.category",
        "slack_alerts.kind",
    } <= written
