"""FakeTwilio driven by the official twilio-python client (sync and async)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, SEND, FakeTwilio

TO, OTHER, FROM = "+15551230001", "+15551230002", "+15550009999"
CALLBACK = "https://nps.example.com/twilio/status"


@pytest.fixture
def client(fake_twilio: FakeTwilio) -> Client:
    return fake_twilio.client()


def send(client: Client, to: str = TO, body: str = "How likely are you to recommend us? Reply 0-10") -> str:
    message = client.messages.create(to=to, from_=FROM, body=body, status_callback=CALLBACK)
    return str(message.sid)


def test_the_documented_recipe_reaches_the_fake(
    fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Client(sid, token) + api.base_url = TWILIO_API_URL, edge/region cleared even if the env sets them."""
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    client = Client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    client.api.base_url = fake_twilio.url  # "http://127.0.0.1:PORT"
    client.edge = client.region = None
    assert send(client).startswith("SM")
    assert fake_twilio.requests(SEND)[0].path == f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"


def test_create_records_the_form_and_returns_a_sid(client: Client, fake_twilio: FakeTwilio) -> None:
    message = client.messages.create(to=TO, from_=FROM, body="Hi ✓", status_callback=CALLBACK)
    assert message.sid is not None and message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued"
    assert message.to == TO
    assert fake_twilio.wait_for(1)[0] == {"To": TO, "From": FROM, "Body": "Hi ✓", "StatusCallback": CALLBACK}
    [sent] = fake_twilio.messages()
    assert (sent.sid, sent.to, sent.from_, sent.status_callback) == (message.sid, TO, FROM, CALLBACK)


def test_fetch_list_and_status_changes(client: Client, fake_twilio: FakeTwilio) -> None:
    first, second = send(client, TO), send(client, OTHER)
    assert client.messages(first).fetch().to == TO
    fake_twilio.set_status(first, "undelivered", 30003)
    fetched = client.messages(first).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)
    assert [m.sid for m in client.messages.list(to=OTHER, limit=10)] == [second]


def test_unknown_sid_is_20404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        client.messages("SM" + "0" * 32).fetch()
    assert (raised.value.status, raised.value.code) == (404, 20404)


def test_bad_credentials_are_401_20003(fake_twilio: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as raised:
        send(fake_twilio.client(auth_token="wrong-token"))
    assert (raised.value.status, raised.value.code) == (401, 20003)
    assert fake_twilio.count(successful=True) == 0


@pytest.mark.parametrize(
    ("injected", "status", "code"),
    [(21610, 400, 21610), (21211, 400, 21211), (21614, 400, 21614), (429, 429, 20429), (500, 500, 20500)],
)
def test_injected_errors_raise_twilio_rest_exception(
    client: Client, fake_twilio: FakeTwilio, injected: int, status: int, code: int
) -> None:
    fake_twilio.fail_next(injected)
    with pytest.raises(TwilioRestException) as raised:
        send(client)
    assert (raised.value.status, raised.value.code) == (status, code)
    assert send(client)  # the fault was used up
    assert fake_twilio.count() == 2
    assert fake_twilio.count(successful=True) == 1


def test_faults_can_target_one_number(client: Client, fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail_next(21610, to=OTHER)
    fake_twilio.fail_to(TO, 21211)
    for _ in range(2):
        with pytest.raises(TwilioRestException, match="Invalid 'To'"):
            send(client, TO)
    with pytest.raises(TwilioRestException) as raised:
        send(client, OTHER)
    assert raised.value.code == 21610
    assert send(client, OTHER)


def test_an_accepted_send_can_still_answer_5xx(client: Client, fake_twilio: FakeTwilio) -> None:
    fake_twilio.accept_then_fail_next(502)
    with pytest.raises(TwilioRestException) as raised:
        send(client, TO)
    assert raised.value.status == 502
    # Twilio has it anyway: the message is in the log that reconciliation reads, and it goes out.
    [listed] = client.messages.list(to=TO)
    assert [m.to for m in fake_twilio.messages()] == [TO] and listed.sid == fake_twilio.messages()[0].sid
    assert send(client, TO)  # the fault was used up


def test_invalid_numbers_are_refused_without_injection(client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        send(client, to="0612345678")
    assert raised.value.code == 21211


def test_latency_delays_sends_without_serialising_them(client: Client, fake_twilio: FakeTwilio) -> None:
    fake_twilio.set_latency(1.0)
    started = time.monotonic()
    with ThreadPoolExecutor(5) as pool:
        sids = list(pool.map(lambda i: send(client, body=f"n{i}"), range(5)))
    elapsed = time.monotonic() - started
    assert len(set(sids)) == 5
    assert 1.0 <= elapsed < 4.0  # serialised would be >= 5 s; the margin absorbs a busy machine


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:twilio"
)  # twilio 9.13 uses aiohttp's deprecated BasicAuth
def test_async_client(fake_twilio: FakeTwilio) -> None:
    async def create() -> str:
        http_client = AsyncTwilioHttpClient()
        try:
            client = fake_twilio.client(http_client=http_client)
            message = await client.messages.create_async(to=TO, from_=FROM, body="async")
            return str(message.sid)
        finally:
            await http_client.close()

    sid = asyncio.run(create())
    assert [m.sid for m in fake_twilio.messages()] == [sid]


def test_smart_encoding_stores_the_gsm_transliteration_and_a_footer_is_appended(
    client: Client, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.store_bodies_as(smart_encoding=True, footer="\nReply STOP to opt out")
    sid = send(client, body="\u201cHow likely\u201d \u2014 we\u2019d love to know\u2026 0\u201310")
    stored = '"How likely" - we\'d love to know... 0-10\nReply STOP to opt out'
    assert client.messages(sid).fetch().body == stored
    assert [m.body for m in client.messages.list(to=TO)] == [stored]
    assert fake_twilio.wait_for(1)[0]["Body"].startswith("\u201cHow")  # what was posted


def test_smart_encoding_leaves_a_text_alone_that_cannot_become_gsm_7(
    client: Client, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.store_bodies_as(smart_encoding=True)
    body = "\u201cHow likely\u201d \u2014 \U0001f600"
    assert client.messages(send(client, body=body)).fetch().body == body


def test_messages_can_be_dated_by_the_tests_clock(client: Client, fake_twilio: FakeTwilio) -> None:
    then = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    fake_twilio.use_clock(lambda: then)
    assert client.messages(send(client)).fetch().date_created == then
    fake_twilio.reset()
    assert client.messages(send(client)).fetch().date_created != then


def test_reset_forgets_messages_and_faults(client: Client, fake_twilio: FakeTwilio) -> None:
    send(client)
    fake_twilio.fail_next(500)
    fake_twilio.set_latency(5)
    fake_twilio.reset()
    assert fake_twilio.messages() == []
    assert send(client)


def test_the_account_can_be_fetched_with_good_credentials_only(fake_twilio: FakeTwilio) -> None:
    account = fake_twilio.client().api.v2010.accounts(DEFAULT_ACCOUNT_SID).fetch()
    assert account.sid == DEFAULT_ACCOUNT_SID and account.status == "active"
    with pytest.raises(TwilioRestException) as error:
        fake_twilio.client(auth_token="wrong").api.v2010.accounts(DEFAULT_ACCOUNT_SID).fetch()
    assert error.value.status == 401 and error.value.code == 20003


def test_incoming_numbers_are_listed_by_phone_number_with_their_sms_url(fake_twilio: FakeTwilio) -> None:
    fake_twilio.add_phone_number(FROM, sms_url="https://nps.example.com/twilio/sms")
    client = fake_twilio.client()
    found = client.incoming_phone_numbers.list(phone_number=FROM)
    assert [(n.phone_number, n.sms_url, n.capabilities["sms"]) for n in found] == [
        (FROM, "https://nps.example.com/twilio/sms", True)
    ]
    assert client.incoming_phone_numbers.list(phone_number=OTHER) == []


def test_a_messaging_service_is_fetched_from_the_messaging_domain(fake_twilio: FakeTwilio) -> None:
    sid = "MG" + "0" * 32
    fake_twilio.add_messaging_service(sid, inbound_request_url="https://nps.example.com/twilio/sms")
    client = fake_twilio.client()
    service = client.messaging.v1.services(sid).fetch()
    assert service.inbound_request_url == "https://nps.example.com/twilio/sms"
    with pytest.raises(TwilioRestException) as error:
        client.messaging.v1.services("MG" + "1" * 32).fetch()
    assert error.value.status == 404 and error.value.code == 20404
