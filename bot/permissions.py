"""Who may do what from Slack, decided in one place.

- **Campaign control** (`/nps campaign pause|resume|run`) and **saved themes' changes** (`/nps themes
  add|remove`): the admins (SLACK_ADMIN_USERS) only. Listing and showing themes is open to everyone.
- **Acting on a follow-up** (Acknowledge, Assign, Resolve and its modal): the responders and the admins. The
  responders are the users of SLACK_RESPONDERS and the members of SLACK_RESPONDER_GROUP when either is set,
  otherwise the members of the channel the alert is in. A case can be assigned only to someone who may act on it,
  and never to a guest from another organisation (Slack Connect).
- **A button acts only on its own alert**: the follow-up a click names must be the one whose alert Slack shows
  as that very message (the click's channel and ts); any other click changes nothing.
- **Personal data** (`/nps contact`, customers' names beside comments and follow-ups): the responders (for
  `/nps`, the members of SLACK_ALERT_CHANNEL unless configured) and the admins, or only the admins with
  SLACK_PERSONAL_DATA=admins. Everyone else gets scores and anonymous comments (phones and emails in them and in
  property values masked). Messages about a case follow the same rule (`Permissions.disclosure`): with
  SLACK_PERSONAL_DATA=admins alerts, kudos and DMs leave out who the customer is, and a DM to an assignee who may
  no longer act on the case shows nothing of it.
- **Only the installed workspace**: a request whose team or Enterprise Grid org differs from what auth.test says
  about our token is refused before any listener runs (`bot.app`), whatever user id it carries.

Memberships come from Slack (conversations.members, paginated; usergroups.users.list) and are kept for a minute,
timed by the monotonic clock (a wall clock stepped back would keep them longer): someone removed from the channel may act for up to a minute more. When Slack cannot answer (a missing scope, a
rate limit, an outage) nobody but the admins may act, and the refusal says why. Every refusal is audited.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot import ids
from campaigns.clock import Clock
from storage.audit import record_audit
from storage.db import Database
from storage.enums import AlertKind, AuditAction, AuditEntity
from storage.tables import FollowUp, SlackAlert

log = logging.getLogger(__name__)

MEMBERSHIP_TTL = timedelta(seconds=60)
MEMBERS_PAGE, MEMBERS_PAGES = 200, 50  # conversations.members: 10,000 members at most, then it fails closed


Disclosure = Literal["customer", "anonymous", "nothing"]
"""What a message about a case may show: all of it, the case without who the customer is, or none of it."""


class LookupFailed(Exception):
    """Slack could not say who is in a channel or user group; `str()` is Slack's error code."""


# --- pure decisions ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The configured rules (service.settings): who the admins are and where the responders come from."""

    admins: frozenset[str] = frozenset()
    responders: frozenset[str] = frozenset()  # SLACK_RESPONDERS
    responder_group: str | None = None  # SLACK_RESPONDER_GROUP
    alert_channel: str | None = None  # SLACK_ALERT_CHANNEL: its members are the responders for /nps
    personal_data: str = "responders"  # SLACK_PERSONAL_DATA: "responders" or "admins"

    @property
    def configured(self) -> bool:
        """The responders are named in the settings, whatever channel an alert is in."""
        return bool(self.responders or self.responder_group)

    def responders_label(self, channel: str | None) -> str:
        """Who may act on follow-ups (in `channel`), as a refusal says it. Never a mention that pings."""
        names = []
        if self.responder_group:
            names.append(f"members of the user group `{self.responder_group}`")
        if self.responders:
            names.append("the responders named in SLACK_RESPONDERS")
        if not names and channel:
            names.append(f"members of <#{channel}>")
        return " and ".join([*names, "admins"]) if names else "admins (SLACK_ADMIN_USERS)"

    def personal_data_label(self) -> str:
        if self.personal_data == "admins":
            return "admins (SLACK_ADMIN_USERS)"
        return self.responders_label(self.alert_channel)


@dataclass(frozen=True)
class Verdict:
    """May someone do something; if not, why (`reason`, audited) and the polite answer to show them."""

    allowed: bool
    reason: str = ""
    text: str = ""


ALLOWED = Verdict(True)


def not_responder(policy: Policy, channel: str | None, verb: str) -> Verdict:
    who = policy.responders_label(channel)
    text = f":no_entry: Only {who} may {verb} follow-ups. Ask one of them, or an admin, if you need to."
    return Verdict(False, "not_responder", text)


def lookup_failed(error: LookupFailed) -> Verdict:
    text = (
        f":warning: I could not check who may act on follow-ups just now (Slack answered `{error}`), so nothing "
        "was changed. Please try again in a minute, or ask an admin."
    )
    return Verdict(False, "lookup_failed", text)


WRONG_MESSAGE = Verdict(
    False, "wrong_message", ":no_entry: That button does not belong to this alert, so nothing was changed."
)


@dataclass(frozen=True)
class Installation:
    """The workspace (or Enterprise Grid org, for an org-wide install) our token belongs to, from auth.test."""

    team_id: str | None
    enterprise_id: str | None
    org_wide: bool = False

    @classmethod
    def of(cls, auth_test: Mapping[str, Any]) -> Installation:
        return cls(
            team_id=auth_test.get("team_id") or None,
            enterprise_id=auth_test.get("enterprise_id") or None,
            org_wide=bool(auth_test.get("is_enterprise_install")),
        )

    def foreign(
        self, *, team_id: str | None, enterprise_id: str | None, user_team_id: str | None = None
    ) -> str | None:
        """The team or enterprise id that makes a request foreign, or None when it comes from here.

        A request without the ids it should carry is foreign too (fail closed). `user_team_id` is the acting
        user's own workspace, which differs in channels shared with other organisations (Slack Connect)."""
        if (enterprise_id or None) != self.enterprise_id:
            return enterprise_id or "no enterprise"
        if self.org_wide:
            return None
        if team_id != self.team_id:
            return team_id or "no workspace"
        if user_team_id is not None and user_team_id != self.team_id:
            return user_team_id
        return None


# --- the Slack lookups -------------------------------------------------------------------------------------


class Directory:
    """Who is in a channel or user group, as Slack says, remembered for `ttl` (failures are not remembered).

    Any refusal fails the lookup (LookupFailed with Slack's code), and the caller lets only admins act. The
    likely ones: `missing_scope` (the app was installed before it asked for channels:read, groups:read and
    usergroups:read: reinstall it), `channel_not_found` (a private channel the bot is not in), `no_such_subteam`
    (SLACK_RESPONDER_GROUP names no user group), `ratelimited` (the cache keeps it to about one call a minute per
    channel or group). A timeout or a refused connection is `no_answer`."""

    def __init__(self, client: WebClient, clock: Clock, ttl: timedelta = MEMBERSHIP_TTL) -> None:
        self.client, self.clock, self.ttl = client, clock, ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}  # key -> (loaded at, monotonic s; members)

    def channel_members(self, channel: str, *, ask: bool = True) -> frozenset[str] | None:
        """None only with `ask=False`, when the members are not remembered (Slack would have to be asked)."""
        return self._cached(f"channel:{channel}", lambda: self._channel_members(channel), ask=ask)

    def group_members(self, group: str, *, ask: bool = True) -> frozenset[str] | None:
        """usergroups.users.list answers the whole group in one page (scope usergroups:read)."""
        return self._cached(
            f"group:{group}",
            lambda: frozenset(self._call(self.client.usergroups_users_list, usergroup=group)["users"]),
            ask=ask,
        )

    def user(self, user: str) -> dict[str, Any]:
        """users.info's `user` (scope users:read): `team_id` is the user's own workspace, and `is_stranger` marks
        someone from another organisation seen in a channel shared with it (Slack Connect)."""
        answer = self._call(self.client.users_info, user=user)
        found = answer.get("user")
        return found if isinstance(found, dict) else {}

    def _channel_members(self, channel: str) -> frozenset[str]:
        """conversations.members, page by page (scopes channels:read, groups:read for private channels)."""
        members: set[str] = set()
        cursor = ""
        for _ in range(MEMBERS_PAGES):
            page = self._call(
                self.client.conversations_members, channel=channel, limit=MEMBERS_PAGE, cursor=cursor
            )
            members.update(page.get("members") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return frozenset(members)
        raise LookupFailed("too_many_members")

    @staticmethod
    def _call(method: Callable[..., Any], **arguments: Any) -> Any:
        try:
            return method(**{k: v for k, v in arguments.items() if v != ""})
        except SlackApiError as error:
            code = error.response.get("error") if error.response is not None else None
            raise LookupFailed(str(code or "error")) from error
        except OSError as error:  # a timeout or a refused connection: Slack did not answer
            raise LookupFailed("no_answer") from error

    def _cached(
        self, key: str, load: Callable[[], frozenset[str]], *, ask: bool = True
    ) -> frozenset[str] | None:
        now = self.clock.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl.total_seconds():
            return hit[1]
        if not ask:
            return None
        members = load()  # outside the lock: two loads at once are harmless, a slow one blocks nobody else
        with self._lock:
            self._cache[key] = (now, members)
        return members


class Permissions:
    """The policy applied: memberships from the directory, the alert a message shows from the database."""

    def __init__(self, policy: Policy, directory: Directory, db: Database) -> None:
        self.policy, self.directory, self.db = policy, directory, db
        self._installation: Installation | None = None

    def is_admin(self, user: str) -> bool:
        return user in self.policy.admins

    def installation(self) -> Installation:
        """Asked once per process (auth.test with our token): the workspace never changes under a token."""
        if self._installation is None:
            answer = self.directory.client.auth_test().data
            self._installation = Installation.of(answer if isinstance(answer, dict) else {})
        return self._installation

    def is_responder(self, user: str, channel: str | None, *, ask: bool = True) -> bool | None:
        """Raises LookupFailed when Slack cannot say; None with `ask=False` when Slack would have to be asked."""
        policy = self.policy
        if user in policy.responders:
            return True
        if policy.responder_group:
            members = self.directory.group_members(policy.responder_group, ask=ask)
        elif policy.configured or not channel:
            return False
        else:
            members = self.directory.channel_members(channel, ask=ask)
        return None if members is None else user in members

    def may_act(self, user: str, channel: str | None, verb: str, *, ask: bool = True) -> Verdict | None:
        """None only with `ask=False`, when the answer needs Slack (a listener that must answer within Slack's
        3 seconds asks again after answering)."""
        if self.is_admin(user):
            return ALLOWED
        try:
            responder = self.is_responder(user, channel, ask=ask)
        except LookupFailed as error:
            log.warning("could not check who may act on follow-ups in %s: %s", channel, error)
            return lookup_failed(error)
        if responder is None:
            return None
        return ALLOWED if responder else not_responder(self.policy, channel, verb)

    def may_assign_to(self, assignee: str, channel: str | None) -> Verdict:
        """Only someone who may act on the case; never a Slack Connect guest, whose own clicks are refused as
        foreign (`Installation.foreign`) and whose DMs would carry the customer into another organisation."""
        verdict = self.may_act(assignee, channel, "act on")
        assert verdict is not None
        if verdict.allowed and not self.is_admin(assignee):
            try:
                guest = self._from_elsewhere(assignee)
            except LookupFailed as error:
                log.warning("could not check the workspace of an assignee: %s", error)
                return lookup_failed(error)
            if guest:
                text = f":no_entry: <@{assignee}> cannot be assigned: they are from another organisation."
                return Verdict(False, "assignee_foreign", text)
        if verdict.allowed or verdict.reason == "lookup_failed":
            return verdict
        who = self.policy.responders_label(channel)
        text = f":no_entry: <@{assignee}> cannot be assigned: only {who} may act on follow-ups."
        return Verdict(False, "assignee_not_responder", text)

    def _from_elsewhere(self, user: str) -> bool:
        info = self.directory.user(user)
        try:
            installed = self.installation()
        except (SlackApiError, OSError) as error:
            raise LookupFailed("no_answer") from error
        if info.get("is_stranger"):
            return True
        if installed.org_wide:
            enterprise = (info.get("enterprise_user") or {}).get("enterprise_id")
            return (enterprise or None) != installed.enterprise_id
        return info.get("team_id") != installed.team_id

    def shows(self, follow_up_id: int, channel: str | None, ts: str | None) -> bool:
        """The message `ts` in `channel` is the alert of `follow_up_id` (read from the database only)."""
        if not channel or not ts or not ids.valid_id(follow_up_id):
            return False
        with self.db.transaction() as session:
            shown = session.execute(
                select(SlackAlert.channel, SlackAlert.ts)
                .join(FollowUp, FollowUp.response_id == SlackAlert.response_id)
                .where(FollowUp.id == follow_up_id, SlackAlert.kind == AlertKind.DETRACTOR)
            ).first()
        return shown is not None and tuple(shown) == (channel, ts)

    def may_act_on_message(
        self, user: str, follow_up_id: int, channel: str | None, ts: str | None, verb: str
    ) -> Verdict:
        """A click (or the modal it opened) on the message `ts` in `channel` about `follow_up_id`."""
        if not self.shows(follow_up_id, channel, ts):
            return WRONG_MESSAGE
        verdict = self.may_act(user, channel, verb)
        assert verdict is not None
        return verdict

    def disclosure(self, user: str | None, channel: str | None) -> Disclosure:
        """How much of a case a message may show: an alert in `channel` (`user` None), or a DM to `user` about a
        case alerted in `channel`. A DM to someone who may not act on the case (removed from the channel since it
        was assigned, or Slack cannot say) shows nothing of it; with SLACK_PERSONAL_DATA=admins, what anyone but
        an admin is shown is anonymous."""
        if user is not None and not self.is_admin(user):
            try:
                if not self.is_responder(user, channel):
                    return "nothing"
            except LookupFailed as error:
                log.warning("could not check who may be shown a case: %s", error)
                return "nothing"
        if self.policy.personal_data == "admins" and not (user is not None and self.is_admin(user)):
            return "anonymous"
        return "customer"

    def sees_personal_data(self, user: str, *, ask: bool = True) -> bool | None:
        """Names and contact details in `/nps` answers; when Slack cannot say, the answer is anonymous. None only
        with `ask=False`, when Slack would have to be asked."""
        if self.is_admin(user):
            return True
        if self.policy.personal_data == "admins":
            return False
        try:
            return self.is_responder(user, self.policy.alert_channel, ask=ask)
        except LookupFailed as error:
            log.warning("could not check who may see personal data: %s", error)
            return False

    def refused(
        self, user: str | None, action: AuditAction, entity: AuditEntity, entity_id: object, **details: Any
    ) -> None:
        """Audit a refusal, in its own transaction (the caller answers the user afterwards)."""
        with self.db.transaction() as session:
            record_audit(
                session=session,
                actor=f"slack:{user or '?'}"[:64],
                action=action,
                entity_type=entity,
                entity_id=entity_id,
                **details,
            )
