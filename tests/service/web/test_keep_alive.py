"""A real `nps serve` keeps an idle HTTP/1.1 connection open longer than the proxies in front of it do.

A reverse proxy or load balancer keeps idle connections to its backends open (nginx's upstream keepalive and an
AWS ALB: 60 s) and reuses them. When the backend closes one first (uvicorn's default: after 5 s), a request the
proxy writes onto it as it closes is lost: a 502 at the proxy, nothing in our log, and for a Twilio webhook a
reply that Twilio does not retry. So the backend keeps idle connections longer (NPS_HTTP_KEEP_ALIVE_SECONDS,
75 s by default) and the proxy closes them first.
"""

from __future__ import annotations

import http.client
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Processes

UVICORN_DEFAULT_SECONDS = 5  # what `nps serve` kept before: the wait below outlasts it


@pytest.fixture(scope="module")
def served_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("keep-alive") / "nps.db"
    shutil.copy(sqlite_template, path)
    processes = Processes()
    try:
        _, url = processes.serve({"DATABASE_URL": f"sqlite:///{path}"}, scheduler=False)
        yield url
    finally:
        processes.kill_all()


def test_an_idle_connection_stays_open_longer_than_uvicorn_s_default(served_url: str) -> None:
    connection = http.client.HTTPConnection(served_url.removeprefix("http://"), timeout=10)
    try:
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        assert (first.status, first.read()) == (200, b'{"status":"ok"}')
        assert connection.sock is not None
        local = connection.sock.getsockname()
        time.sleep(UVICORN_DEFAULT_SECONDS + 1.5)  # idle, as a proxy's pooled connection between requests
        connection.request("GET", "/healthz")  # on the same socket: http.client reconnects only without one
        assert connection.sock.getsockname() == local
        second = connection.getresponse()  # RemoteDisconnected if the server had closed it meanwhile
        assert second.status == 200
    finally:
        connection.close()
