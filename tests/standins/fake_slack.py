"""A local Slack Web API: a threaded HTTP server answering like slack.com/api for `WebClient(base_url=...)`.

Modelled on bolt-python's tests/mock_web_api_server, with state (posted messages, uploads), recording
and fault injection (429 with Retry-After, 500, latency, canned error bodies). `rate_limit` turns on Slack's own
per-channel limit on chat.postMessage (about one a second, short bursts tolerated, 429 + Retry-After beyond it).

App code: `WebClient(token="xoxb-...", base_url=fake.url)` where `fake.url` is "http://127.0.0.1:PORT/api/"
(the SLACK_API_URL format; slack_sdk adds a missing trailing "/"). Tokens must start with xoxb- or xoxp-.
Routes: /api/<method> (the methods in `FakeSlack._methods`, others answer ok=false "unknown_method"),
/upload/<file_id> (the `upload_url` files.getUploadURLExternal hands out, so `files_upload_v2` stays local) and
/response/<name> (`fake.response_url()`, to put in slash-command and interaction bodies instead of
hooks.slack.com). The server is threaded and latency is slept outside the lock, so concurrent calls overlap.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.manifest import bot_scopes
from tests.standins._server import IncomingRequest, RecordedRequest, Reply, StandinHTTPServer, parse_body
from tests.standins.block_kit import block_problems, view_problems

TEAM_ID = "T123"
BOT_USER_ID = "U0BOT00001"
BOT_ID = "B0BOT00001"
APP_ID = "A0APP00001"
RESPONSE_URL = "response_url"
"""`RecordedRequest.method` of POSTs to a `response_url()`."""
RESPONSE_URL_USES = 5
"""Slack accepts up to 5 posts per response_url; later ones get 404 "used_url" here."""
JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")
"""Fields slack_sdk sends as JSON strings inside form bodies; recorded bodies hold them parsed."""
CHANNEL_METHODS = ("chat.postMessage", "chat.update", "conversations.history")
"""Methods a refused channel (`refuse_channel`) answers with its error."""
BLOCK_METHODS = ("chat.postMessage", "chat.update", "chat.postEphemeral")
VIEW_METHODS = ("views.open", "views.update", "views.publish")
"""Methods whose blocks or view the fake reads with Block Kit's rules, answering `invalid_blocks` as Slack does."""

Payload = dict[str, Any]

MANIFEST_SCOPES = bot_scopes()
"""The bot scopes of the app manifest: what `auth.test` reports as granted unless `set_scopes` says otherwise."""


@dataclass(frozen=True)
class _Fault:
    status: int
    retry_after: int
    body: Payload | None


@dataclass
class _Bucket:
    """One channel's allowance: `tokens` left at monotonic time `at` (refilled at the limit's rate)."""

    tokens: float
    at: float


@dataclass(frozen=True)
class _RateLimit:
    per_second: float
    burst: int
    monotonic: Callable[[], float]


@dataclass
class _Upload:
    filename: str
    length: int
    data: bytes | None = None


def _error(code: str) -> Payload:
    return {"ok": False, "error": code}


def dm_channel_id(user_id: str) -> str:
    """The stable direct-message channel id this fake gives a user ("D" + 10 chars)."""
    return "D" + hashlib.sha1(user_id.encode()).hexdigest()[:10].upper()


class FakeSlack(StandinHTTPServer):
    """Slack Web API stand-in; use `WebClient(token="xoxb-...", base_url=fake.url)`."""

    def __init__(self) -> None:
        super().__init__()
        self._methods: dict[str, Callable[[Payload, str], Payload]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.members": self._conversations_members,
            "conversations.info": self._conversations_info,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "views.update": self._views_update,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }
        self._ts_micros = int(time.time()) * 1_000_000  # kept across reset(): ts stay increasing
        self._ids = itertools.count(1)
        self._init_state()

    def _init_state(self) -> None:
        self._faults: defaultdict[str, deque[_Fault]] = defaultdict(deque)
        self._drops: defaultdict[str, int] = defaultdict(int)
        self._drop_after: defaultdict[str, int] = defaultdict(int)  # calls answered before the drops start
        self._after: defaultdict[str, deque[_Fault]] = defaultdict(deque)
        self._holds: defaultdict[str, deque[tuple[float, threading.Event]]] = defaultdict(deque)
        self._during: defaultdict[str, deque[list[Any]]] = defaultdict(deque)  # [calls to let by, hook]
        self._views: dict[str, Payload] = {}  # view id -> the view as last opened, published or updated
        self._latency: dict[str, float] = {}
        self._messages: dict[tuple[str, str], Payload] = {}
        self._uploads: dict[str, _Upload] = {}
        self._users: dict[str, Payload] = {}
        self._members: dict[str, list[str]] = {}
        self._groups: dict[str, list[str]] = {}
        self._refused: dict[str, str] = {}
        self._scopes: tuple[str, ...] = MANIFEST_SCOPES
        self._invalid: list[
            tuple[str, list[str]]
        ] = []  # (method, problems) of every payload refused as invalid
        self._rate: _RateLimit | None = None
        self._buckets: dict[str, _Bucket] = {}
        self._rate_limited = 0

    @property
    def url(self) -> str:
        """Base URL for `WebClient(base_url=...)`: "http://127.0.0.1:PORT/api/"."""
        return f"{self.base_url}/api/"

    # test controls -------------------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        status: int = 429,
        times: int = 1,
        retry_after: int = 1,
        body: Payload | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with a failure instead of running them.

        429 -> `{"ok": false, "error": "ratelimited"}` + `Retry-After: retry_after` (an integer: slack_sdk
        parses it with int()); 500 -> HTTP 500; any status with `body` -> that JSON body (e.g. status=200,
        body={"ok": False, "error": "channel_not_found"}).
        """
        with self._cond:
            self._faults[method].extend(_Fault(status, retry_after, body) for _ in range(times))

    def fail_after_next(
        self, method: str, status: int = 500, body: Payload | None = None, times: int = 1
    ) -> None:
        """Run the next `times` calls of `method` (a message is posted), then answer a failure anyway: an edge's
        5xx, or Slack's `fatal_error` / `internal_error` ("some aspect of the operation may have succeeded")."""
        with self._cond:
            self._after[method].extend(_Fault(status, 1, body) for _ in range(times))

    def hold_next(self, method: str, seconds: float) -> threading.Event:
        """Handle the next call of `method` only `seconds` after it arrives (a slow path to Slack), so that a
        later call can be handled first; the event is set when the held call has arrived."""
        arrived = threading.Event()
        with self._cond:
            self._holds[method].append((seconds, arrived))
        return arrived

    def during_next(self, method: str, hook: Callable[[], None], after: int = 0) -> None:
        """Run `hook` inside the next call of `method` (after the first `after`), once Slack has handled it and
        before it answers: the caller is still waiting on Slack, so what `hook` changes happens "during the
        call", deterministically. The hook runs outside the fake's lock."""
        with self._cond:
            self._during[method].append([after, hook])

    def drop_next(self, method: str, times: int = 1, after: int = 0) -> None:
        """Run the next `times` calls of `method` (a message is posted) but hang up instead of answering:
        what a connection reset after Slack took the request looks like from the client. With `after`, the
        first `after` calls are answered as usual."""
        with self._cond:
            self._drops[method] += times
            self._drop_after[method] = after

    def refuse_channel(self, channel: str, error: str = "not_in_channel") -> None:
        """Answer every call about `channel` (CHANNEL_METHODS) with ok=false `error` until `accept_channel`: the
        bot removed from the channel, the channel archived (`is_archived`) or gone (`channel_not_found`)."""
        with self._cond:
            self._refused[channel] = error

    def accept_channel(self, channel: str) -> None:
        """`channel` works again (the bot was invited back)."""
        with self._cond:
            self._refused.pop(channel, None)

    def rate_limit(
        self, per_second: float = 1.0, burst: int = 3, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        """Enforce Slack's per-channel limit on chat.postMessage: `burst` posts at once, then `per_second`; a post
        beyond it is refused (429 `ratelimited`, Retry-After: the whole seconds until the next one is allowed)
        and posts nothing. Until `reset`; `rate_limited()` counts the refusals."""
        with self._cond:
            self._rate = _RateLimit(per_second, burst, monotonic)
            self._buckets = {}

    def rate_limited(self) -> int:
        """How many chat.postMessage calls the per-channel limit (`rate_limit`) refused."""
        with self._cond:
            return self._rate_limited

    def response_url(self, name: str = "default") -> str:
        """A local response_url: POSTs to it are recorded as method "response_url" (JSON bodies parsed).

        `fail_next("response_url", 500)` and `set_latency("response_url", s)` apply to it too.
        """
        return f"{self.base_url}/response/{name}"

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay every answer to `method` ("*" for all methods) by `seconds`."""
        with self._cond:
            self._latency[method] = seconds

    def add_user(self, user_id: str, **fields: Any) -> None:
        """Override fields of the user `users.info` returns (keys of `profile` go in `profile=`)."""
        with self._cond:
            self._users[user_id] = fields

    def set_channel_members(self, channel: str, users: list[str]) -> None:
        """The members `conversations.members` lists for `channel` (in this order); a channel never given here
        answers `channel_not_found`, as a channel the bot cannot see does."""
        with self._cond:
            self._members[channel] = list(users)

    def set_scopes(self, scopes: list[str]) -> None:
        """The bot scopes `auth.test` reports in its `x-oauth-scopes` header (default: the manifest's)."""
        with self._cond:
            self._scopes = tuple(scopes)

    def set_user_group(self, group: str, users: list[str]) -> None:
        """The members `usergroups.users.list` lists for the user group `group` (an "S..." id); any other group
        answers `no_such_subteam`."""
        with self._cond:
            self._groups[group] = list(users)

    def reset(self) -> None:
        """Forget requests, messages, uploads, users, channel members, user groups, faults and latency."""
        with self._cond:
            super().reset()
            self._init_state()

    # assertions ----------------------------------------------------------------------------------
    def calls(self, method: str) -> list[Payload]:
        """Parsed bodies of every call of `method` (failed attempts included)."""
        return [r.body for r in self.requests(method)]

    def successful(self, method: str) -> list[Payload]:
        """Parsed bodies of the calls of `method` answered with HTTP 200 and ok=true."""
        return [r.body for r in self._select(method, successful=True)]

    def count(self, method: str) -> int:
        """How many times `method` was called (attempts, failed ones included)."""
        return len(self.requests(method))

    def wait_for(
        self, method: str, n: int = 1, timeout: float = 5, successful: bool = False
    ) -> list[Payload]:
        """Block until `method` was called `n` times (or succeeded n times); return all bodies so far.

        Raises AssertionError on timeout.
        """
        return [r.body for r in self._wait(method, n, timeout, successful)]

    def invalid_payloads(self) -> list[tuple[str, list[str]]]:
        """Every payload answered `invalid_blocks` since the last reset, as (method, what Block Kit refused)."""
        with self._cond:
            return list(self._invalid)

    def message(self, channel: str, ts: str) -> Payload | None:
        """The current state of a message this fake posted (after any chat.update), or None."""
        with self._cond:
            return self._messages.get((channel, ts))

    def uploads(self) -> dict[str, bytes]:
        """Bytes received by the upload URLs, by file id."""
        with self._cond:
            return {fid: u.data for fid, u in self._uploads.items() if u.data is not None}

    # HTTP ------------------------------------------------------------------------------------------
    def answer(self, request: IncomingRequest) -> Reply:
        """Route /api/<method>, /upload/<file_id> and /response/<name>."""
        if request.path.startswith("/upload/"):
            return self._answer_upload(request)
        if request.path.startswith("/response/"):
            return self._answer_response_url(request)
        method = request.path.removeprefix("/api/")
        body = self._decode_json_fields({**request.query, **parse_body(request.headers, request.raw)})
        with self._cond:
            hold = self._holds[method].popleft() if self._holds[method] else None
        if hold is not None:
            hold[1].set()
            time.sleep(hold[0])
        with self._cond:
            delay = self._delay(method)
            status, payload, headers = self._run(method, request, body)
            if status == 200 and payload.get("ok") and self._after[method]:
                fault = self._after[method].popleft()
                status, payload = (
                    fault.status,
                    fault.body or _error("fatal_error" if fault.status >= 500 else "internal_error"),
                )
            ok = status == 200 and bool(payload.get("ok"))
            self._record(method, request, body, status, ok)
            drop = self._drops[method] > 0 and self._drop_after[method] == 0
            if self._drops[method] > 0 and not drop:
                self._drop_after[method] -= 1
            if drop:
                self._drops[method] -= 1
            hook = self._due_hook(method)
        if hook is not None:
            hook()
        if drop:
            return Reply(status, drop=True)
        return Reply.json(status, payload, headers, delay)

    def _due_hook(self, method: str) -> Callable[[], None] | None:
        """The `during_next` hook this call of `method` runs, consumed; None if there is none yet."""
        pending = self._during[method]
        if not pending:
            return None
        if pending[0][0] > 0:
            pending[0][0] -= 1
            return None
        hook: Callable[[], None] = pending.popleft()[1]
        return hook

    def _delay(self, method: str) -> float:
        return self._latency.get(method, self._latency.get("*", 0.0))

    def _fault(self, method: str) -> tuple[int, Payload, dict[str, str]] | None:
        """The next injected failure of `method` as (status, body, headers), consumed; None if there is none."""
        if not self._faults[method]:
            return None
        fault = self._faults[method].popleft()
        if fault.status == 429:
            return 429, fault.body or _error("ratelimited"), {"Retry-After": str(fault.retry_after)}
        error = "fatal_error" if fault.status >= 500 else "invalid_request"
        return fault.status, fault.body or _error(error), {}

    def _run(
        self, method: str, request: IncomingRequest, body: Payload
    ) -> tuple[int, Payload, dict[str, str]]:
        fault = self._fault(method)
        if fault is not None:
            return fault
        if method not in self._methods:
            return 200, _error("unknown_method"), {}
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else body.get("token", "")
        if not token:
            return 200, _error("not_authed"), {}
        if not token.startswith(("xoxb-", "xoxp-")):
            return 200, _error("invalid_auth"), {}
        refused = self._refused.get(str(body.get("channel", "")))
        if refused is not None and method in CHANNEL_METHODS:
            return 200, _error(refused), {}
        if method == "chat.postMessage" and not self._within_rate(str(body.get("channel", ""))):
            return 429, _error("ratelimited"), {"Retry-After": str(self._retry_after(str(body["channel"])))}
        problems = self._block_kit_problems(method, body)
        if problems:
            self._invalid.append((method, problems))
            return 200, {**_error("invalid_blocks"), "errors": problems}, {}
        payload = self._methods[method](body, token)
        if method == "auth.test":  # Slack lists the token's scopes in a header of every Web API answer
            return 200, payload, {"x-oauth-scopes": ",".join(self._scopes)}
        return 200, payload, {}

    def _within_rate(self, channel: str) -> bool:
        """Take one post from the channel's allowance; False (and counted) when there is none left."""
        rate = self._rate
        if rate is None:
            return True
        now = rate.monotonic()
        bucket = self._buckets.setdefault(channel, _Bucket(float(rate.burst), now))
        bucket.tokens = min(float(rate.burst), bucket.tokens + (now - bucket.at) * rate.per_second)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        self._rate_limited += 1
        return False

    def _retry_after(self, channel: str) -> int:
        """Slack's Retry-After is whole seconds: at least 1, even when the next post is allowed sooner."""
        assert self._rate is not None
        return max(1, math.ceil((1 - self._buckets[channel].tokens) / self._rate.per_second))

    @staticmethod
    def _block_kit_problems(method: str, body: Payload) -> list[str]:
        """As Slack: blocks and views are read with Block Kit's rules (slack_sdk's models) before anything else."""
        if method in VIEW_METHODS and "view" in body:
            return view_problems(body["view"])
        if method in BLOCK_METHODS and "blocks" in body:
            return block_problems(body["blocks"])
        return []

    def _answer_upload(self, request: IncomingRequest) -> Reply:
        file_id = request.path.removeprefix("/upload/")
        with self._cond:
            upload = self._uploads.get(file_id)
            if upload is not None:
                upload.data = request.raw
            status = 200 if upload is not None else 404
            self._record(request.path, request, {}, status, upload is not None)
        text = f"OK - {len(request.raw)}" if upload is not None else "Not Found"
        return Reply(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    def _answer_response_url(self, request: IncomingRequest) -> Reply:
        body = parse_body(request.headers, request.raw)
        with self._cond:
            delay = self._delay(RESPONSE_URL)
            fault = self._fault(RESPONSE_URL)
            used = sum(1 for r in self._select(RESPONSE_URL, successful=True) if r.path == request.path)
            problems = self._block_kit_problems("chat.postMessage", self._decode_json_fields(dict(body)))
            if fault is not None:
                status, headers, text = fault[0], fault[2], str(fault[1].get("error"))
            elif problems:
                self._invalid.append((RESPONSE_URL, problems))
                status, headers, text = 400, {}, "invalid_blocks"
            elif used >= RESPONSE_URL_USES:
                status, headers, text = 404, {}, "used_url"
            else:
                status, headers, text = 200, {}, "ok"
            self._record(RESPONSE_URL, request, body, status, status == 200)
        headers = {"Content-Type": "text/html", **headers}
        return Reply(status, text.encode(), headers, delay)

    @staticmethod
    def _decode_json_fields(body: Payload) -> Payload:
        for name in JSON_FIELDS:
            value = body.get(name)
            if isinstance(value, str) and value[:1] in ("[", "{"):
                body[name] = json.loads(value)
        return body

    def _next_ts(self) -> str:
        self._ts_micros += 100
        return f"{self._ts_micros // 1_000_000}.{self._ts_micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):010d}"

    # Web API methods (called with the lock held) ------------------------------------------------------
    def _auth_test(self, body: Payload, token: str) -> Payload:
        result = {"ok": True, "url": "https://test.slack.com/", "team": "Test Team", "team_id": TEAM_ID}
        if token.startswith("xoxb-"):
            return {**result, "user": "npsbot", "user_id": BOT_USER_ID, "bot_id": BOT_ID}
        return {**result, "user": "installer", "user_id": "U0USER0001", "is_enterprise_install": False}

    def _chat_post_message(self, body: Payload, token: str) -> Payload:
        channel = str(body.get("channel") or "")
        if not channel:
            return _error("channel_not_found")
        if not (body.get("text") or body.get("blocks") or body.get("attachments")):
            return _error("no_text")
        channel_id = dm_channel_id(channel) if channel[0] in "UW" else channel
        ts = self._next_ts()
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID}
        message.update(team=TEAM_ID, text=body.get("text", ""), ts=ts)
        for name in ("blocks", "attachments", "thread_ts", "metadata"):
            if body.get(name):
                message[name] = body[name]
        self._messages[(channel_id, ts)] = message
        return {"ok": True, "channel": channel_id, "ts": ts, "message": message}

    def _chat_update(self, body: Payload, token: str) -> Payload:
        key = (str(body.get("channel", "")), str(body.get("ts", "")))
        message = self._messages.get(key)
        if message is None:
            return _error("message_not_found")
        for name in ("text", "blocks", "attachments", "metadata"):
            if name in body:
                message[name] = body[name]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {"ok": True, "channel": key[0], "ts": key[1], "text": message["text"], "message": message}

    def _chat_post_ephemeral(self, body: Payload, token: str) -> Payload:
        if not body.get("channel"):
            return _error("channel_not_found")
        if not body.get("user"):
            return _error("user_not_in_channel")
        return {"ok": True, "message_ts": self._next_ts()}

    def _conversations_history(self, body: Payload, token: str) -> Payload:
        """A channel's messages, newest first, within (oldest, latest]; `metadata` only with
        include_all_metadata, as Slack does. One page: `limit` (default 100) and has_more."""
        channel = str(body.get("channel") or "")
        if not channel:
            return _error("channel_not_found")
        oldest, latest = float(body.get("oldest") or 0), float(body.get("latest") or "inf")
        with_metadata = str(body.get("include_all_metadata", "")).lower() in ("1", "true")
        found = sorted(
            (m for (c, ts), m in self._messages.items() if c == channel and oldest < float(ts) <= latest),
            key=lambda m: float(m["ts"]),
            reverse=True,
        )
        limit = int(body.get("limit") or 100)
        page = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in found[:limit]
        ]
        return {"ok": True, "messages": page, "has_more": len(found) > limit}

    def _conversations_members(self, body: Payload, token: str) -> Payload:
        """A channel's member ids, one page of `limit` (default 100, at most 1000) from the opaque `cursor`;
        `response_metadata.next_cursor` is "" on the last page, as Slack answers."""
        members = self._members.get(str(body.get("channel") or ""))
        if members is None:
            return _error("channel_not_found")
        cursor = str(body.get("cursor") or "")
        if cursor and not cursor.startswith("members:"):
            return _error("invalid_cursor")
        start = int(cursor.removeprefix("members:") or 0)
        limit = min(int(body.get("limit") or 100), 1000)
        end = start + limit
        next_cursor = f"members:{end}" if end < len(members) else ""
        return {"ok": True, "members": members[start:end], "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_info(self, body: Payload, token: str) -> Payload:
        """A channel given to `set_channel_members`, with `is_member` for the bot; others `channel_not_found`."""
        channel = str(body.get("channel") or "")
        members = self._members.get(channel)
        if members is None:
            return _error("channel_not_found")
        info = {"id": channel, "name": channel.lower(), "is_channel": channel.startswith("C")}
        info.update(is_private=channel.startswith("G"), is_archived=False, is_member=BOT_USER_ID in members)
        return {"ok": True, "channel": info}

    def _usergroups_users_list(self, body: Payload, token: str) -> Payload:
        users = self._groups.get(str(body.get("usergroup") or ""))
        if users is None:
            return _error("no_such_subteam")
        return {"ok": True, "users": list(users)}

    def _conversations_open(self, body: Payload, token: str) -> Payload:
        if body.get("channel"):
            return {"ok": True, "channel": {"id": body["channel"]}, "already_open": True}
        users = body.get("users") or ""
        user_ids = users if isinstance(users, list) else [u for u in str(users).split(",") if u]
        if not user_ids:
            return _error("users_list_not_supplied")
        channel_id = dm_channel_id(",".join(sorted(user_ids)))
        if len(user_ids) > 1:
            channel_id = "G" + channel_id[1:]
        return {"ok": True, "no_op": False, "already_open": False, "channel": {"id": channel_id}}

    def _view(self, view: Any, default_type: str) -> Payload:
        view = dict(view) if isinstance(view, dict) else {}
        view_id = self._next_id("V")
        view.update(id=view_id, team_id=TEAM_ID, app_id=APP_ID, bot_id=BOT_ID, hash=f"{view_id}.hash")
        view.setdefault("type", default_type)
        view.setdefault("state", {"values": {}})
        self._views[view_id] = view
        return view

    def _views_open(self, body: Payload, token: str) -> Payload:
        if not body.get("trigger_id") or not body.get("view"):
            return _error("invalid_arguments")
        return {"ok": True, "view": self._view(body["view"], "modal")}

    def _views_update(self, body: Payload, token: str) -> Payload:
        """As Slack: the view named by `view_id` is replaced (a new hash); `not_found` for a view never opened,
        `hash_conflict` when a `hash` is given that is not the view's current one."""
        old = self._views.get(str(body.get("view_id") or ""))
        if not body.get("view"):
            return _error("invalid_arguments")
        if old is None:
            return _error("not_found")
        if body.get("hash") and body["hash"] != old["hash"]:
            return _error("hash_conflict")
        view = dict(body["view"]) if isinstance(body["view"], dict) else {}
        view.update(id=old["id"], team_id=TEAM_ID, app_id=APP_ID, bot_id=BOT_ID, hash=self._next_id("H"))
        view.setdefault("type", old["type"])
        view.setdefault("state", {"values": {}})
        self._views[old["id"]] = view
        return {"ok": True, "view": view}

    def _views_publish(self, body: Payload, token: str) -> Payload:
        if not body.get("user_id") or not body.get("view"):
            return _error("invalid_arguments")
        return {"ok": True, "view": self._view(body["view"], "home")}

    def _users_info(self, body: Payload, token: str) -> Payload:
        user_id = str(body.get("user") or "")
        if not user_id:
            return _error("user_not_found")
        overrides = dict(self._users.get(user_id, {}))
        name = f"user.{user_id.lower()}"
        profile = {"display_name": name, "real_name": f"User {user_id}", "email": f"{name}@example.com"}
        profile.update(overrides.pop("profile", {}))
        user = {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name,
            "real_name": profile["real_name"],
            "deleted": False,
            "is_bot": False,
            "tz": "America/New_York",
            "tz_label": "Eastern Standard Time",
            "tz_offset": -18000,
            "profile": profile,
        }
        user.update(overrides)
        return {"ok": True, "user": user}

    def _files_get_upload_url(self, body: Payload, token: str) -> Payload:
        if not body.get("filename") or not body.get("length"):
            return _error("invalid_arguments")
        file_id = self._next_id("F")
        self._uploads[file_id] = _Upload(filename=str(body["filename"]), length=int(body["length"]))
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, body: Payload, token: str) -> Payload:
        files = body.get("files")
        if not isinstance(files, list) or not files:
            return _error("invalid_arguments")
        if any(f.get("id") not in self._uploads for f in files):
            return _error("file_not_found")
        result = []
        for f in files:
            upload = self._uploads[f["id"]]
            title = f.get("title") or upload.filename
            result.append({"id": f["id"], "title": title, "name": upload.filename, "size": upload.length})
        return {"ok": True, "files": result}


__all__ = ["MANIFEST_SCOPES", "RESPONSE_URL", "FakeSlack", "RecordedRequest", "dm_channel_id"]
