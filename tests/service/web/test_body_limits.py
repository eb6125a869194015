"""Request bodies are limited while they are read, and refused before they are read where headers already tell.

Against a real `nps serve` (uvicorn, HTTP/1.1 on 127.0.0.1): a body sent chunked, without Content-Length, is
what a Content-Length check alone lets through, and only a real server receives it in pieces. The server runs
once for the module, on a SQLite database of its own (the limits do not depend on the engine).
"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.web.limits import API_BODY, DEFAULT_BODY, SLACK_BODY, SURVEY_BODY, TWILIO_BODY
from tests.faults.harness import NpsProcess, wait_until
from tests.fixtures.app import API_KEY
from tests.fixtures.engine import FROM_NUMBER
from tests.fixtures.own_postgres import free_port
from tests.fixtures.slack import SIGNING_SECRET
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.standins.slack_signing import signed_headers

MB = 1024 * 1024
CHUNK = 64 * 1024
AUTH = {"Authorization": f"Bearer {API_KEY}"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


@dataclass
class Served:
    url: str
    process: NpsProcess


@pytest.fixture(scope="module")
def served(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, _fake_slack_server: FakeSlack
) -> Iterator[Served]:
    """`nps serve --no-scheduler` with the API, Twilio and Slack configured, on a free port."""
    path = tmp_path_factory.mktemp("limits") / "nps.db"
    shutil.copy(sqlite_template, path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "DATABASE_URL": f"sqlite:///{path}",
        "HOST": "127.0.0.1",
        "PUBLIC_BASE_URL": url,
        "NPS_API_KEYS": API_KEY,
        "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": "http://127.0.0.1:9",  # never called: nothing is sent
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": _fake_slack_server.url,
        "LOG_LEVEL": "INFO",
    }
    process = NpsProcess(["serve", "--no-scheduler", "--port", str(port)], env)
    try:
        wait_until(lambda: _answers(url) or not process.running(), timeout=60, what="nps serve to answer")
        assert process.running(), f"nps serve exited:\n{process.log[-3000:]}"
        yield Served(url, process)
    finally:
        process.kill9()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def chunked(body: bytes) -> Iterator[bytes]:
    """The body in pieces: httpx sends a generator with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


def json_body(size: int) -> bytes:
    """A contact that is valid JSON of about `size` bytes (the name is padding)."""
    return json.dumps({"external_id": "c1", "email": "a@example.com", "name": "x" * size}).encode()


def form_body(size: int) -> bytes:
    return b"MessageSid=SM1&From=%2B4915112345678&Body=" + b"x" * size


def slack_headers(body: bytes) -> dict[str, str]:
    """Correctly signed, so that only the size can be what refuses it."""
    return signed_headers(body.decode(), SIGNING_SECRET)


# route, the limit it has, a body over it, headers that pass every check made before the body is read
OVER_THE_LIMIT = [
    ("/api/v1/contacts", API_BODY, json_body(API_BODY), {**AUTH, **JSON}),
    ("/api/v1/events", API_BODY, json_body(API_BODY), {**AUTH, **JSON}),
    ("/twilio/sms", TWILIO_BODY, form_body(TWILIO_BODY), {**FORM, "X-Twilio-Signature": "not-checked-yet="}),
    ("/twilio/status", TWILIO_BODY, form_body(TWILIO_BODY), {**FORM, "X-Twilio-Signature": "not-checked-yet="}),
    ("/slack/events", SLACK_BODY, b"payload=" + b"x" * SLACK_BODY, {}),
    ("/s/any-token", SURVEY_BODY, b"score=9&comment=" + b"x" * SURVEY_BODY, FORM),
    ("/u/any-token", SURVEY_BODY, b"List-Unsubscribe=One-Click&x=" + b"x" * SURVEY_BODY, FORM),
]  # fmt: skip


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
@pytest.mark.parametrize(
    ("path", "limit", "body", "headers"), OVER_THE_LIMIT, ids=[case[0] for case in OVER_THE_LIMIT]
)
def test_a_body_over_the_routes_limit_is_refused_with_413(
    served: Served, path: str, limit: int, body: bytes, headers: dict[str, str], framing: str
) -> None:
    assert len(body) > limit
    if path == "/slack/events":
        headers = slack_headers(body)
    content = chunked(body) if framing == "chunked" else body
    response = httpx.post(served.url + path, content=content, headers=headers, timeout=30)
    assert response.status_code == 413, response.text[:300]
    assert "Traceback" not in response.text
    assert _answers(served.url)  # the connection's leftovers did not hurt the server


def test_a_route_without_a_limit_of_its_own_has_the_default(served: Served) -> None:
    """/healthz never reads a body (one sent chunked is dropped unread); a declared one over the default is 413."""
    body = b"x" * (DEFAULT_BODY + 1)
    assert httpx.request("GET", served.url + "/healthz", content=body, timeout=30).status_code == 413
    assert httpx.request("GET", served.url + "/healthz", content=chunked(body), timeout=30).status_code == 200


def test_a_body_exactly_at_the_limit_is_read(served: Served) -> None:
    body = json_body(API_BODY)
    body = body[: -len('"}')][: API_BODY - 2] + b'"}'  # the padding shortened to land on the limit exactly
    assert len(body) == API_BODY
    response = httpx.post(
        served.url + "/api/v1/contacts", content=chunked(body), headers={**AUTH, **JSON}, timeout=30
    )
    assert response.status_code != 413  # read whole; the name's own limit then refuses it
    assert response.status_code == 422 and "name" in response.text


# --- refused before the body is read -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/api/v1/contacts", JSON, 401),
        ("/api/v1/contacts", {**JSON, "Authorization": "Bearer wrong-key"}, 401),
        ("/api/v1/events", JSON, 401),
        ("/twilio/sms", FORM, 403),
        ("/twilio/status", FORM, 403),
        ("/slack/events", FORM, 401),
        ("/slack/events", {**FORM, "X-Slack-Signature": "v0=" + "0" * 64}, 401),
        ("/slack/events", {**FORM, "X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "x"}, 401),
    ],
)  # fmt: skip
def test_a_request_that_cannot_be_authentic_is_refused_by_its_headers_alone(
    served: Served, path: str, headers: dict[str, str], status: int
) -> None:
    """Answered while the body is still owed: only a request refused before its body is read gets an answer."""
    assert answer_to_unfinished_body(served, path, headers) == status


def answer_to_unfinished_body(served: Served, path: str, headers: dict[str, str]) -> int:
    """The status of the answer to a chunked POST of which only the first byte is ever sent."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n{head}\r\n1\r\n{{\r\n"
    )
    with socket.create_connection(("127.0.0.1", int(served.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(request.encode())
        received = b""
        try:
            while b"\r\n" not in received:
                piece = sock.recv(4096)
                if not piece:
                    break
                received += piece
        except TimeoutError:
            raise AssertionError(f"{path}: no answer within 10 s; the server waits for the body") from None
    return int(received.split(b" ", 2)[1])


# --- one hostile client does not stall the others -------------------------------------------------------------

HOSTILE = 20 * MB


def hostile_bodies() -> list[tuple[str, bytes, dict[str, str]]]:
    """20 MB to every POST route, without any key or signature, in the shape that is dearest to parse."""
    numbers = b"[" + b"1," * (HOSTILE // 2) + b"1]"  # ten million JSON numbers
    fields = b"Body=" + b"%41" * (HOSTILE // 3)  # percent-escapes, decoded one by one
    return [
        ("/api/v1/contacts", numbers, JSON),
        ("/api/v1/events", numbers, JSON),
        ("/twilio/sms", fields, FORM),
        ("/twilio/status", fields, FORM),
        ("/s/any-token", fields, FORM),
        ("/u/any-token", fields, FORM),
        ("/slack/events", fields, FORM),
    ]


def test_20_mb_unsigned_bodies_to_every_route_leave_healthz_answering_fast(served: Served) -> None:
    """Issue 11 "done when": /healthz answers in under 100 ms while a 20 MB unsigned body arrives at any route.

    Before the limits, each 20 MB body was read and parsed in full before it was refused, and an unsigned Slack
    body was logged and masked on top: /healthz stopped answering within this test's two minutes. The bound on
    the slowest answer is generous for a loaded 2-core machine; the median has to meet the target itself.
    """
    latencies: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    answered = client.get(served.url + "/healthz").status_code == 200
                except httpx.HTTPError:
                    answered = False
                latencies.append(time.perf_counter() - started if answered else float("inf"))
                time.sleep(0.001)  # many polls even when the bodies are refused quickly

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    statuses = {}
    try:
        with httpx.Client(timeout=120) as client:
            for path, body, headers in hostile_bodies():
                response = client.post(served.url + path, content=chunked(body), headers=headers)
                statuses[path] = response.status_code
    finally:
        stop.set()
        poller.join(timeout=60)
    assert statuses == {
        "/api/v1/contacts": 401,
        "/api/v1/events": 401,
        "/twilio/sms": 403,
        "/twilio/status": 403,
        "/s/any-token": 413,
        "/u/any-token": 413,
        "/slack/events": 401,
    }
    print(
        f"healthz: {len(latencies)} polls, median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    assert len(latencies) > 10, "/healthz was polled while the bodies arrived"
    assert statistics.median(latencies) < 0.1, sorted(latencies)[-5:]
    assert max(latencies) < 1.0, sorted(latencies)[-5:]
    assert served.process.running()
