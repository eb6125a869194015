"""What the Slack Web API's answers mean for the alert outbox (`bot.poster`): this module sorts Slack's error
codes, the poster acts on the sorting.

- 429 / `ratelimited` (honouring Retry-After): nothing was posted; the run stops and the whole queue waits, so
  that after an outage of any length every alert arrives once and in order.
- 5xx, `internal_error`, `fatal_error`, `service_unavailable`, `request_timeout`: "not now", but for a post they
  do not prove that nothing was posted (Slack's docs: "it's possible some aspect of the operation succeeded"):
  the post is looked up before it is made again, like a timeout. An edit is simply made again.
- The app's setup is broken (`invalid_auth`, `missing_scope`, ...): every alert would fail alike; the queue waits
  15 minutes at a time and nothing is lost.
- A channel is broken (`not_in_channel`, `channel_not_found`, `is_archived`): that says nothing about the alert,
  only about where it goes; that channel's alerts are held and retried every few minutes (`bot.alert_holds`).
- Any other refusal is about this message alone (`invalid_blocks`, `msg_too_long`, ...): it is marked failed
  with the reason, and `nps alerts` lists it.
"""

from __future__ import annotations

# Slack saying "not now": the queue waits and retries, in order.
RETRYABLE = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# ...of which these may come after the message was stored; only a rate limit proves a post was not made.
MAYBE_POSTED = RETRYABLE - {"ratelimited"}
# The app's own setup is broken (token revoked, scope missing): every alert would fail the same way.
SETUP = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
    }
)
SETUP_PAUSE = 15 * 60  # seconds the whole queue waits for an admin to fix the setup
# The channel itself is broken: held until someone invites the bot or fixes the channel id.
CHANNEL = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
CHANNEL_PAUSE = 5 * 60  # seconds between tries of a held channel
