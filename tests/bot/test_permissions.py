"""The permission model's decisions (pure) and its Slack lookups against the fake Web API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from slack_sdk import WebClient

from bot.permissions import MEMBERS_PAGE, Directory, Installation, LookupFailed, Policy
from campaigns.clock import ManualClock
from tests.fixtures.slack import AGENT, ALERTS, MANAGER
from tests.standins.fake_slack import FakeSlack

HERE = Installation(team_id="T0HERE", enterprise_id=None)
IN_GRID = Installation(team_id="T0HERE", enterprise_id="E0GRID")
ORG_WIDE = Installation(team_id=None, enterprise_id="E0GRID", org_wide=True)


def test_the_installation_is_what_auth_test_says() -> None:
    assert Installation.of({"ok": True, "team_id": "T0HERE", "user_id": "U0BOT"}) == HERE
    grid = Installation.of({"team_id": "T0HERE", "enterprise_id": "E0GRID", "is_enterprise_install": False})
    assert grid == IN_GRID
    org = Installation.of({"team_id": "", "enterprise_id": "E0GRID", "is_enterprise_install": True})
    assert org == ORG_WIDE


@pytest.mark.parametrize(
    ("installed", "team", "enterprise", "user_team", "foreign"),
    [
        (HERE, "T0HERE", None, None, None),
        (HERE, "T0HERE", None, "T0HERE", None),
        (HERE, "T0OTHER", None, None, "T0OTHER"),
        (HERE, None, None, None, "no workspace"),  # a request that does not say where it comes from
        (HERE, "T0HERE", "E0GRID", None, "E0GRID"),
        (HERE, "T0HERE", None, "T0GUEST", "T0GUEST"),  # someone from a connected organisation
        (IN_GRID, "T0HERE", "E0GRID", None, None),
        (IN_GRID, "T0HERE", None, None, "no enterprise"),
        (IN_GRID, "T0HERE", "E0OTHER", None, "E0OTHER"),
        (IN_GRID, "T0SISTER", "E0GRID", None, "T0SISTER"),  # another workspace of the same org
        (ORG_WIDE, "T0SISTER", "E0GRID", "T0SISTER", None),  # installed on the whole org
        (ORG_WIDE, "T0SISTER", "E0OTHER", None, "E0OTHER"),
    ],
)
def test_a_request_is_foreign_unless_it_comes_from_the_installation(
    installed: Installation,
    team: str | None,
    enterprise: str | None,
    user_team: str | None,
    foreign: str | None,
) -> None:
    assert installed.foreign(team_id=team, enterprise_id=enterprise, user_team_id=user_team) == foreign


def test_the_refusal_says_who_may_act() -> None:
    assert Policy().responders_label("C0ALERTS") == "members of <#C0ALERTS> and admins"
    assert Policy().responders_label(None) == "admins (SLACK_ADMIN_USERS)"
    group = Policy(responder_group="S0SUPPORT", responders=frozenset({"U0ANA"}))
    assert group.responders_label("C0ALERTS") == (
        "members of the user group `S0SUPPORT` and the responders named in SLACK_RESPONDERS and admins"
    )
    assert Policy(alert_channel="C0ALERTS").personal_data_label() == "members of <#C0ALERTS> and admins"
    assert Policy(alert_channel="C0ALERTS", personal_data="admins").personal_data_label() == (
        "admins (SLACK_ADMIN_USERS)"
    )


@pytest.fixture
def directory(fake_slack: FakeSlack, clock: ManualClock) -> Directory:
    return Directory(WebClient(token="xoxb-test", base_url=fake_slack.url, retry_handlers=[]), clock)


def test_every_page_of_a_large_channel_is_read(directory: Directory, fake_slack: FakeSlack) -> None:
    members = [f"U{n:08d}" for n in range(2 * MEMBERS_PAGE + 50)]
    fake_slack.set_channel_members("C0BIG", members)
    assert directory.channel_members("C0BIG") == frozenset(members)
    calls = fake_slack.calls("conversations.members")
    assert len(calls) == 3 and all(int(call["limit"]) == MEMBERS_PAGE for call in calls)
    assert "cursor" not in calls[0] and calls[1]["cursor"]


def test_memberships_are_remembered_for_a_minute_and_failures_not_at_all(
    directory: Directory, fake_slack: FakeSlack, clock: ManualClock
) -> None:
    fake_slack.set_channel_members("C0ALERTS", ["U0ANA"])
    fake_slack.fail_next("conversations.members", status=429)
    with pytest.raises(LookupFailed, match="ratelimited"):
        directory.channel_members("C0ALERTS")
    assert directory.channel_members("C0ALERTS") == {"U0ANA"}
    fake_slack.set_channel_members("C0ALERTS", ["U0BEN"])  # Ana leaves the channel
    clock.advance(seconds=59)
    assert directory.channel_members("C0ALERTS") == {"U0ANA"}  # still remembered
    clock.advance(seconds=2)
    assert directory.channel_members("C0ALERTS") == {"U0BEN"}
    assert fake_slack.count("conversations.members") == 3


def test_user_groups_and_their_errors(directory: Directory, fake_slack: FakeSlack) -> None:
    fake_slack.set_user_group("S0SUPPORT", ["U0ANA", "U0BEN"])
    assert directory.group_members("S0SUPPORT") == {"U0ANA", "U0BEN"}
    with pytest.raises(LookupFailed, match="no_such_subteam"):
        directory.group_members("S0GONE")
    with pytest.raises(LookupFailed, match="channel_not_found"):
        directory.channel_members("C0GONE")


def test_a_slack_that_does_not_answer_is_a_lookup_failure(clock: ManualClock) -> None:
    unreachable = WebClient(
        token="xoxb-test", base_url="http://127.0.0.1:9/api/", timeout=1, retry_handlers=[]
    )
    with pytest.raises(LookupFailed, match="no_answer"):
        Directory(unreachable, clock).channel_members("C0ALERTS")


def test_a_clock_stepped_back_does_not_keep_a_removed_member_for_longer_than_a_minute(
    fake_slack: FakeSlack,
) -> None:
    """Memberships are kept for a minute by the monotonic clock. When the wall clock steps back (an NTP
    correction, a resumed VM), a removed member is still forgotten after a minute, not after the clock has
    caught up again (here an hour in which someone removed from the channel would still act on follow-ups)."""
    clock = ManualClock(datetime(2026, 5, 14, 12, 0, tzinfo=UTC))
    directory = Directory(WebClient(token="xoxb-test", base_url=fake_slack.url, retry_handlers=[]), clock)
    fake_slack.set_channel_members(ALERTS, [MANAGER, AGENT])
    assert AGENT in directory.channel_members(ALERTS)
    fake_slack.set_channel_members(ALERTS, [MANAGER])  # the agent is removed
    clock.set(datetime(2026, 5, 14, 11, 0, tzinfo=UTC))  # the clock steps back an hour
    clock.advance(minutes=2)  # two real minutes after the removal
    assert AGENT not in directory.channel_members(ALERTS)
