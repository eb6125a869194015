"""Shared plumbing for the HTTP stand-ins: a threaded stdlib server, request recording, waiting."""

from __future__ import annotations

import json
import socketserver
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

HOST = "127.0.0.1"


@dataclass(frozen=True)
class IncomingRequest:
    """One HTTP request as the stand-in sees it (header names lower-cased)."""

    http_method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes


@dataclass(frozen=True)
class Reply:
    """What the stand-in answers; `delay` is slept (outside any lock) before writing it."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # hang up without answering: the request was handled, the client never hears back

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: dict[str, str] | None = None, delay: float = 0.0
    ) -> Reply:
        """A JSON reply with the right content type."""
        all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(payload).encode(), all_headers, delay)


@dataclass(frozen=True)
class RecordedRequest:
    """A request the stand-in received, with how it was answered.

    `method` is the API operation ("chat.postMessage", "messages.create") or the path otherwise;
    `headers` has lower-cased names; `body` is the parsed form/JSON body.
    """

    method: str
    http_method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes
    time: float
    answered_status: int
    succeeded: bool
    query: dict[str, str] = field(default_factory=dict)


def parse_body(headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """Parse a JSON, form-encoded or multipart body into a dict ({} when it is none of those)."""
    content_type = headers.get("content-type", "").lower()
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        parsed = json.loads(raw)
        return parsed if isinstance(parsed, dict) else {"_json": parsed}
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + headers["content-type"].encode() + b"\r\n\r\n" + raw
        )
        parts: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            parts[str(name)] = data if part.get_filename() else data.decode()
        return parts
    return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        request = IncomingRequest(
            http_method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            raw=raw,
        )
        try:
            reply = self.server.standin.answer(request)
        except Exception:  # a bug in the stand-in: show it to the client instead of resetting
            reply = Reply(500, traceback.format_exc().encode(), {"Content-Type": "text/plain"})
        if reply.delay > 0:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: pytest output is for test failures."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 50 simultaneous clients must not hit a full listen backlog

    def __init__(self, standin: StandinHTTPServer) -> None:
        self.standin = standin
        super().__init__((HOST, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before its answer (a killed worker, a client timeout) is what fault tests do on
        purpose: not worth a traceback. Anything else is a bug in the stand-in and is printed."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse-DNS lookup of the host name."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]


class StandinHTTPServer:
    """Base of the HTTP stand-ins: lifecycle, thread-safe recording and waiting.

    Subclasses implement `answer()` and call `_record()` while holding `self._cond`.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._recorded: list[RecordedRequest] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve from a daemon thread."""
        if self._httpd is None:
            self._httpd = _Server(self)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, name=type(self).__name__, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._httpd.server_port

    @property
    def base_url(self) -> str:
        """The server's root URL, "http://127.0.0.1:PORT" (no trailing slash)."""
        return f"http://{HOST}:{self.port}"

    def answer(self, request: IncomingRequest) -> Reply:
        """Compute the reply to one request (runs in a server thread)."""
        raise NotImplementedError

    # recording -------------------------------------------------------------------------------
    def _record(
        self, method: str, request: IncomingRequest, body: dict[str, Any], status: int, succeeded: bool
    ) -> None:
        entry = RecordedRequest(
            method=method,
            http_method=request.http_method,
            path=request.path,
            headers=request.headers,
            body=body,
            raw=request.raw,
            time=time.time(),
            answered_status=status,
            succeeded=succeeded,
            query=request.query,
        )
        with self._cond:
            self._recorded.append(entry)
            self._cond.notify_all()

    def requests(self, method: str | None = None) -> list[RecordedRequest]:
        """Every recorded request (attempts that were failed on purpose included), oldest first."""
        with self._cond:
            return [r for r in self._recorded if method is None or r.method == method]

    def _select(self, method: str, successful: bool) -> list[RecordedRequest]:
        return [r for r in self.requests(method) if r.succeeded or not successful]

    def _wait(self, method: str, n: int, timeout: float, successful: bool) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(found := self._select(method, successful)) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({r.method for r in self._recorded})
                    kind = "successful " if successful else ""
                    raise AssertionError(
                        f"expected {n} {kind}{method} request(s) within {timeout}s, got {len(found)}; "
                        f"methods seen: {seen}"
                    )
                self._cond.wait(remaining)
            return found

    def reset(self) -> None:
        """Forget recorded requests (subclasses also clear their state and faults)."""
        with self._cond:
            self._recorded.clear()
