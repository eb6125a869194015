"""FakeSlack driven by the real slack_sdk clients: if these pass, app code using WebClient can trust the fake."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookClient
from urllib3 import encode_multipart_formdata

from tests.standins._server import parse_body
from tests.standins.fake_slack import (
    BOT_USER_ID,
    MANIFEST_SCOPES,
    RESPONSE_URL,
    TEAM_ID,
    FakeSlack,
    dm_channel_id,
)

TOKEN = "xoxb-test-token"
SECTION = [{"type": "section", "text": {"type": "mrkdwn", "text": "*NPS* alert"}}]
MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Follow up"}, "blocks": SECTION}


@pytest.fixture
def client(fake_slack: FakeSlack) -> WebClient:
    return WebClient(token=TOKEN, base_url=fake_slack.url)


def test_url_is_the_slack_api_url_format(fake_slack: FakeSlack) -> None:
    assert fake_slack.url == f"http://127.0.0.1:{fake_slack.port}/api/"
    # slack_sdk adds the trailing slash itself, so SLACK_API_URL may omit it
    assert WebClient(token=TOKEN, base_url=fake_slack.url.rstrip("/")).auth_test()["ok"]


def test_auth_test_answers_as_the_bot(client: WebClient, fake_slack: FakeSlack) -> None:
    response = client.auth_test()
    assert response["user_id"] == BOT_USER_ID
    assert response["team_id"] == TEAM_ID
    assert fake_slack.requests("auth.test")[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_post_message_then_update_it(client: WebClient, fake_slack: FakeSlack) -> None:
    posted = client.chat_postMessage(channel="C0ALERTS", text="Detractor: 3", blocks=SECTION)
    assert posted["channel"] == "C0ALERTS"
    assert fake_slack.calls("chat.postMessage") == [
        {"channel": "C0ALERTS", "text": "Detractor: 3", "blocks": SECTION}
    ]

    updated = client.chat_update(channel=posted["channel"], ts=posted["ts"], text="Detractor: 3 (handled)")
    assert updated["ts"] == posted["ts"]
    message = fake_slack.message("C0ALERTS", posted["ts"])
    assert message is not None
    assert message["text"] == "Detractor: 3 (handled)"
    assert message["blocks"] == SECTION
    assert "edited" in message


def test_history_finds_a_post_by_its_metadata_even_when_the_answer_was_lost(
    client: WebClient, fake_slack: FakeSlack
) -> None:
    metadata = {"event_type": "nps_alert", "event_payload": {"alert_id": 7}}
    client.chat_postMessage(channel="C1", text="older")
    fake_slack.set_latency("chat.postMessage", 2)
    slow = WebClient(token=TOKEN, base_url=fake_slack.url, timeout=1)
    with pytest.raises(TimeoutError):
        slow.chat_postMessage(channel="C1", text="alert", metadata=metadata)
    history = client.conversations_history(channel="C1", include_all_metadata=True, limit=10)
    assert [m["text"] for m in history["messages"]] == ["alert", "older"]  # newest first
    assert history["messages"][0]["metadata"] == metadata
    without = client.conversations_history(channel="C1")
    assert all("metadata" not in m for m in without["messages"])
    assert client.conversations_history(channel="C1", limit=1)["has_more"] is True


def test_a_dropped_answer_still_posts_and_the_client_sees_a_hang_up(
    client: WebClient, fake_slack: FakeSlack
) -> None:
    fake_slack.drop_next("chat.postMessage")
    bare = WebClient(token=TOKEN, base_url=fake_slack.url, retry_handlers=[])
    with pytest.raises(ConnectionError):  # http.client.RemoteDisconnected
        bare.chat_postMessage(channel="C1", text="once")
    assert [m["text"] for m in client.conversations_history(channel="C1")["messages"]] == ["once"]
    assert bare.chat_postMessage(channel="C1", text="twice")["ok"]  # used up


def test_a_drop_can_wait_for_the_calls_before_it(fake_slack: FakeSlack) -> None:
    fake_slack.drop_next("chat.postMessage", after=2)
    bare = WebClient(token=TOKEN, base_url=fake_slack.url, retry_handlers=[])
    assert bare.chat_postMessage(channel="C1", text="first")["ok"]
    assert bare.chat_postMessage(channel="C1", text="second")["ok"]
    with pytest.raises(ConnectionError):
        bare.chat_postMessage(channel="C1", text="third")
    assert bare.chat_postMessage(channel="C1", text="fourth")["ok"]
    assert [m["text"] for m in fake_slack.successful("chat.postMessage")] == [
        "first",
        "second",
        "third",
        "fourth",
    ]


def test_a_call_can_be_handled_and_still_answered_with_an_error(
    client: WebClient, fake_slack: FakeSlack
) -> None:
    fake_slack.fail_after_next("chat.postMessage", 200, body={"ok": False, "error": "fatal_error"})
    with pytest.raises(SlackApiError, match="fatal_error"):
        client.chat_postMessage(channel="C1", text="taken")
    assert [m["text"] for m in client.conversations_history(channel="C1")["messages"]] == ["taken"]


def test_a_held_call_is_handled_after_a_later_one(client: WebClient, fake_slack: FakeSlack) -> None:
    arrived = fake_slack.hold_next("chat.postMessage", 1.0)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.chat_postMessage, channel="C1", text="first")
        assert arrived.wait(5)
        client.chat_postMessage(channel="C1", text="second")
        first.result(timeout=5)
    history = client.conversations_history(channel="C1")["messages"]
    assert [m["text"] for m in history] == ["first", "second"]  # newest first: "first" was handled last


def test_timestamps_increase(client: WebClient) -> None:
    first = client.chat_postMessage(channel="C1", text="a")["ts"]
    second = client.chat_postMessage(channel="C1", text="b")["ts"]
    assert float(second) > float(first)


def test_update_of_an_unknown_message_fails(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        client.chat_update(channel="C1", ts="1.000001", text="x")
    assert raised.value.response["error"] == "message_not_found"


def test_posting_to_a_user_lands_in_the_same_dm_conversations_open_gives(client: WebClient) -> None:
    opened = client.conversations_open(users=["U0AAA"])
    posted = client.chat_postMessage(channel="U0AAA", text="hi")
    assert opened["channel"]["id"] == posted["channel"] == dm_channel_id("U0AAA")


def test_post_ephemeral(client: WebClient, fake_slack: FakeSlack) -> None:
    response = client.chat_postEphemeral(channel="C1", user="U0AAA", text="only you")
    assert response["message_ts"]
    assert fake_slack.calls("chat.postEphemeral")[0]["user"] == "U0AAA"


def test_channel_members_come_in_pages_as_slack_pages_them(client: WebClient, fake_slack: FakeSlack) -> None:
    members = [f"U{n:08d}" for n in range(5)]
    fake_slack.set_channel_members("C1", members)
    first = client.conversations_members(channel="C1", limit=2)
    assert first["members"] == members[:2]
    seen, cursor = list(first["members"]), first["response_metadata"]["next_cursor"]
    while cursor:
        page = client.conversations_members(channel="C1", limit=2, cursor=cursor)
        seen += page["members"]
        cursor = page["response_metadata"]["next_cursor"]
    assert seen == members
    assert client.conversations_members(channel="C1")["response_metadata"]["next_cursor"] == ""
    with pytest.raises(SlackApiError) as raised:
        client.conversations_members(channel="C0UNKNOWN")
    assert raised.value.response["error"] == "channel_not_found"


def test_user_group_members(client: WebClient, fake_slack: FakeSlack) -> None:
    fake_slack.set_user_group("S0SUPPORT", ["U0AAA", "U0BBB"])
    assert client.usergroups_users_list(usergroup="S0SUPPORT")["users"] == ["U0AAA", "U0BBB"]
    with pytest.raises(SlackApiError) as raised:
        client.usergroups_users_list(usergroup="S0OTHER")
    assert raised.value.response["error"] == "no_such_subteam"
    fake_slack.reset()
    with pytest.raises(SlackApiError):
        client.usergroups_users_list(usergroup="S0SUPPORT")


def test_views_open_and_publish(client: WebClient, fake_slack: FakeSlack) -> None:
    modal = client.views_open(trigger_id="1.2.abc", view=MODAL)["view"]
    assert modal["id"].startswith("V")
    assert modal["type"] == "modal"
    home = client.views_publish(user_id="U0AAA", view={"type": "home", "blocks": SECTION})["view"]
    assert home["type"] == "home"
    assert fake_slack.calls("views.open")[0]["view"] == MODAL  # JSON fields are recorded parsed
    assert fake_slack.calls("views.publish")[0]["user_id"] == "U0AAA"


def test_views_update_replaces_an_open_view_unless_its_hash_is_stale(client: WebClient) -> None:
    modal = client.views_open(trigger_id="1.2.abc", view=MODAL)["view"]
    changed = {**MODAL, "blocks": SECTION}
    updated = client.views_update(view_id=modal["id"], hash=modal["hash"], view=changed)["view"]
    assert updated["id"] == modal["id"] and updated["blocks"] == SECTION and updated["hash"] != modal["hash"]
    for wrong in ({"view_id": modal["id"], "hash": modal["hash"]}, {"view_id": "V0NEVER"}):
        with pytest.raises(SlackApiError) as refused:
            client.views_update(view=changed, **wrong)
        assert refused.value.response["error"] in {"hash_conflict", "not_found"}


def test_users_info_with_overrides(client: WebClient, fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U0AAA", tz="Europe/Paris", profile={"email": "ana@example.com"})
    user = client.users_info(user="U0AAA")["user"]
    assert user["tz"] == "Europe/Paris"
    assert user["profile"]["email"] == "ana@example.com"
    assert client.users_info(user="U0BBB")["user"]["profile"]["email"] == "user.u0bbb@example.com"


def test_bad_token_and_unknown_method_fail_like_slack(fake_slack: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        WebClient(token="not-a-token", base_url=fake_slack.url).auth_test()
    assert raised.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as raised:
        client.api_call("chat.scheduleMessage", json={"channel": "C1", "text": "x", "post_at": 1})
    assert raised.value.response["error"] == "unknown_method"


def test_files_upload_v2_runs_its_three_calls_locally(client: WebClient, fake_slack: FakeSlack) -> None:
    content = b"name,score\nAna,3\n"
    response = client.files_upload_v2(
        channel="C0ALERTS", content=content, filename="detractors.csv", title="Detractors"
    )
    file_id = response["file"]["id"]
    assert response["file"]["title"] == "Detractors"
    assert fake_slack.uploads() == {file_id: content}
    assert [r.method for r in fake_slack.requests()] == [
        "files.getUploadURLExternal",
        f"/upload/{file_id}",
        "files.completeUploadExternal",
    ]
    completed = fake_slack.calls("files.completeUploadExternal")[0]
    assert completed["channel_id"] == "C0ALERTS"
    assert completed["files"] == [{"id": file_id, "title": "Detractors"}]


def test_429_surfaces_with_retry_after(client: WebClient, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", 429, retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="x")
    response = raised.value.response
    assert response.status_code == 429
    assert response["error"] == "ratelimited"
    assert response.headers["Retry-After"] == "7"

    assert client.chat_postMessage(channel="C1", text="x")["ok"]  # one fault, consumed
    assert fake_slack.count("chat.postMessage") == 2
    assert len(fake_slack.successful("chat.postMessage")) == 1


def test_rate_limit_retry_handler_waits_and_succeeds(fake_slack: FakeSlack) -> None:
    client = WebClient(
        token=TOKEN, base_url=fake_slack.url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    fake_slack.fail_next("chat.postMessage", 429, retry_after=0)  # the handler adds up to 1 s of jitter
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    assert [r.answered_status for r in fake_slack.requests("chat.postMessage")] == [429, 200]


def test_500_fails_and_server_error_retry_handler_recovers(fake_slack: FakeSlack, client: WebClient) -> None:
    fake_slack.fail_next("chat.postMessage", 500)
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="x")
    assert raised.value.response.status_code == 500

    retrying = WebClient(
        token=TOKEN,
        base_url=fake_slack.url,
        retry_handlers=[ServerErrorRetryHandler(1, FixedValueRetryIntervalCalculator(0.01))],
    )
    fake_slack.fail_next("chat.postMessage", 500)
    assert retrying.chat_postMessage(channel="C1", text="x")["ok"]


def test_canned_error_body(client: WebClient, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", 200, body={"ok": False, "error": "channel_not_found"})
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="x")
    assert raised.value.response["error"] == "channel_not_found"


def test_a_refused_channel_answers_its_error_until_accepted_and_other_channels_work(
    client: WebClient, fake_slack: FakeSlack
) -> None:
    fake_slack.refuse_channel("C1", "is_archived")
    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="C1", text="x")
        assert raised.value.response["error"] == "is_archived"
    assert client.chat_postMessage(channel="C2", text="y")["ok"]
    fake_slack.accept_channel("C1")
    assert client.chat_postMessage(channel="C1", text="z")["ok"]
    assert [m["text"] for m in client.conversations_history(channel="C1")["messages"]] == ["z"]


def test_latency_does_not_serialise_concurrent_calls(client: WebClient, fake_slack: FakeSlack) -> None:
    fake_slack.set_latency("*", 0.3)
    started = time.monotonic()
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda i: client.chat_postMessage(channel="C1", text=str(i)), range(5)))
    elapsed = time.monotonic() - started
    assert all(r["ok"] for r in results)
    assert 0.3 <= elapsed < 1.2  # serialised would be >= 1.5 s


def test_async_web_client(fake_slack: FakeSlack) -> None:
    async def post() -> str:
        client = AsyncWebClient(token=TOKEN, base_url=fake_slack.url)
        return str((await client.chat_postMessage(channel="C1", text="async"))["ts"])

    ts = asyncio.run(post())
    assert fake_slack.message("C1", ts) is not None


def test_response_url_records_posts_and_allows_five_uses(fake_slack: FakeSlack) -> None:
    webhook = WebhookClient(fake_slack.response_url("cmd1"))
    for i in range(5):
        response = webhook.send(text=f"reply {i}", response_type="ephemeral")
        assert (response.status_code, response.body) == (200, "ok")
    assert webhook.send(text="one too many").status_code == 404
    assert fake_slack.calls(RESPONSE_URL)[0] == {"text": "reply 0", "response_type": "ephemeral"}

    fake_slack.fail_next(RESPONSE_URL, 500)
    assert WebhookClient(fake_slack.response_url("cmd2")).send(text="x").status_code == 500


def test_wait_for_returns_bodies_or_times_out(client: WebClient, fake_slack: FakeSlack) -> None:
    client.chat_postMessage(channel="C1", text="x")
    assert fake_slack.wait_for("chat.postMessage", 1, timeout=1)[0]["text"] == "x"
    with pytest.raises(AssertionError, match=r"expected 2 chat\.postMessage"):
        fake_slack.wait_for("chat.postMessage", 2, timeout=0.05)


def test_reset_forgets_everything(client: WebClient, fake_slack: FakeSlack) -> None:
    ts = client.chat_postMessage(channel="C1", text="x")["ts"]
    fake_slack.fail_next("chat.postMessage", 500)
    fake_slack.reset()
    assert fake_slack.requests() == []
    assert fake_slack.message("C1", ts) is None
    assert client.chat_postMessage(channel="C1", text="y")["ok"]


def test_multipart_bodies_parse() -> None:
    """Legacy endpoints (files.upload) post multipart: text fields decode, files stay bytes."""
    raw, content_type = encode_multipart_formdata({"channels": "C1", "file": ("a.csv", b"\x00\x01")})
    assert parse_body({"content-type": content_type}, raw) == {"channels": "C1", "file": b"\x00\x01"}


def test_auth_test_lists_the_granted_scopes_in_the_header_slack_sends(
    client: WebClient, fake_slack: FakeSlack
) -> None:
    """By default every scope of the app manifest; `set_scopes` grants fewer (an app installed before a change)."""
    granted = client.auth_test().headers["x-oauth-scopes"]
    assert set(granted.split(",")) == set(MANIFEST_SCOPES) and "chat:write" in MANIFEST_SCOPES
    fake_slack.set_scopes(["chat:write", "commands"])
    assert client.auth_test().headers["x-oauth-scopes"] == "chat:write,commands"


def test_conversations_info_says_whether_the_bot_is_a_member(
    client: WebClient, fake_slack: FakeSlack
) -> None:
    fake_slack.set_channel_members("C0ALERTS01", [BOT_USER_ID, "U1"])
    fake_slack.set_channel_members("C0OTHER001", ["U1"])
    assert client.conversations_info(channel="C0ALERTS01")["channel"]["is_member"] is True
    assert client.conversations_info(channel="C0OTHER001")["channel"]["is_member"] is False
    with pytest.raises(SlackApiError) as error:
        client.conversations_info(channel="C0UNKNOWN1")
    assert error.value.response["error"] == "channel_not_found"


def test_blocks_and_views_that_block_kit_refuses_are_answered_invalid_blocks_as_slack_does() -> None:
    """The fake reads every payload with slack_sdk's models, so the `fake_slack` fixture can fail any test whose
    app code sent one Slack would refuse (its own server here: the fixture would fail this test)."""
    misspelt = [{"type": "section", "txt": {"type": "mrkdwn", "text": "*NPS* alert"}}]
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with FakeSlack() as fake:
        client = WebClient(token=TOKEN, base_url=fake.url)
        for blocks in (misspelt, too_long, []):
            with pytest.raises(SlackApiError) as refused:
                client.chat_postMessage(channel="C1", text="alert", blocks=blocks)
            assert refused.value.response["error"] == "invalid_blocks"
        with pytest.raises(SlackApiError):
            client.views_publish(user_id="U1", view={"type": "home", "blocks": misspelt})
        client.chat_postMessage(channel="C1", text="alert", blocks=SECTION)
        assert [method for method, _ in fake.invalid_payloads()] == ["chat.postMessage"] * 3 + [
            "views.publish"
        ]
        assert fake.count("chat.postMessage") == 4 and len(fake.successful("chat.postMessage")) == 1
        fake.reset()
        assert fake.invalid_payloads() == []


def test_rate_limit_allows_a_burst_then_one_post_a_second_per_channel(fake_slack: FakeSlack) -> None:
    now = [100.0]
    fake_slack.rate_limit(per_second=1, burst=3, monotonic=lambda: now[0])
    client = WebClient(token=TOKEN, base_url=fake_slack.url, retry_handlers=[])
    first = client.chat_postMessage(channel="C0ALERTS", text="burst 0")
    for n in range(1, 3):
        client.chat_postMessage(channel="C0ALERTS", text=f"burst {n}")
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C0ALERTS", text="one too many")
    assert refused.value.response.status_code == 429
    assert refused.value.response["error"] == "ratelimited"
    assert refused.value.response.headers["Retry-After"] == "1"
    client.chat_postMessage(channel="C0OTHER", text="another channel has its own allowance")
    now[0] += 1.0
    client.chat_postMessage(channel="C0ALERTS", text="a second later")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C0ALERTS", text="again too soon")
    texts = [m["text"] for m in fake_slack.successful("chat.postMessage")]
    assert texts == [
        "burst 0",
        "burst 1",
        "burst 2",
        "another channel has its own allowance",
        "a second later",
    ]
    assert fake_slack.rate_limited() == 2
    assert client.chat_update(channel="C0ALERTS", ts=first["ts"], text="edits are not limited")


def test_rate_limit_is_off_after_reset(fake_slack: FakeSlack, client: WebClient) -> None:
    fake_slack.rate_limit(per_second=1, burst=1, monotonic=lambda: 0.0)
    fake_slack.reset()
    for n in range(5):
        client.chat_postMessage(channel="C0ALERTS", text=f"post {n}")
    assert fake_slack.rate_limited() == 0


def test_during_next_runs_its_hook_inside_the_chosen_call(client: WebClient, fake_slack: FakeSlack) -> None:
    seen: list[int] = []
    fake_slack.during_next(
        "chat.postMessage", lambda: seen.append(fake_slack.count("chat.postMessage")), after=1
    )
    client.chat_postMessage(channel="C0ALERTS", text="one")
    assert seen == []
    client.chat_postMessage(channel="C0ALERTS", text="two")
    client.chat_postMessage(channel="C0ALERTS", text="three")
    assert seen == [2]  # inside the second call, once Slack had it, before it answered
