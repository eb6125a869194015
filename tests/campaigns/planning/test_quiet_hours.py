from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from campaigns.definitions.model import SendWindow
from campaigns.planning.quiet_hours import (
    SHIPPED_RULES,
    allowed,
    cap_frees_at,
    legal_window,
    next_allowed,
    parse_rules,
    recipient,
)

RULES = parse_rules(SHIPPED_RULES.read_text())
NEW_YORK = ZoneInfo("America/New_York")
CAMPAIGN = ZoneInfo("Europe/London")
EVERY_DAY_LATE = SendWindow(frozenset(range(7)), time(7), time(22))


def test_every_shipped_rule_names_its_source():
    assert {"US", "US-FL", "US-OK", "US-MD", "US-WA", "FR"} <= set(RULES)
    assert all("http" in rule.source for rule in RULES.values())


def test_a_florida_number_gets_the_state_rule_in_its_own_zone():
    window = legal_window(RULES, recipient("+13055550123", None, CAMPAIGN))
    assert window is not None
    assert window.describe() == (
        "legal quiet hours: US-FL 08:00-20:00 America/New_York and America/Chicago, at most 3 texts in 24 h"
    )


def test_the_contacts_own_zone_wins_over_the_numbers():
    window = legal_window(RULES, recipient("+13055550123", ZoneInfo("America/Denver"), CAMPAIGN))
    assert window is not None and window.zone.key == "America/Denver"


def test_oklahoma_maryland_and_washington_come_from_the_area_code():
    keys = {
        phone: legal_window(RULES, recipient(phone, None, CAMPAIGN))
        for phone in ("+14055550123", "+14105550123", "+12065550123")
    }
    assert {phone: (w.rule, w.zone.key) for phone, w in keys.items() if w} == {
        "+14055550123": ("US-OK", "America/Chicago"),
        "+14105550123": ("US-MD", "America/New_York"),
        "+12065550123": ("US-WA", "America/Los_Angeles"),
    }


def test_a_state_without_its_own_rule_gets_the_federal_hours():
    window = legal_window(RULES, recipient("+12125550123", None, CAMPAIGN))
    assert window is not None
    assert (window.rule, window.start, window.end, window.max_per_24h) == ("US", time(8), time(21), None)


def test_france_has_no_sunday_and_a_country_without_rules_has_no_window():
    france = legal_window(RULES, recipient("+33612345678", None, CAMPAIGN))
    assert france is not None and 6 not in france.days and france.zone.key == "Europe/Paris"
    assert legal_window(RULES, recipient("+4915123456789", None, CAMPAIGN)) is None


def test_a_number_with_several_zones_falls_back_to_the_campaigns():
    toll_free = recipient(
        "+18005550199", None, CAMPAIGN
    )  # +1 800 spans every North American zone: all judged
    assert toll_free.region == "US" and len(toll_free.zones) > 3 and CAMPAIGN not in toll_free.zones
    mobile = recipient("+61412345678", None, CAMPAIGN)  # an Australian mobile: Perth to Sydney
    assert (mobile.region, mobile.zone) == ("AU", CAMPAIGN)
    assert recipient("not a number", None, CAMPAIGN).region is None


def test_an_override_replaces_or_removes_a_shipped_rule():
    rules = parse_rules(
        'rules: {us-fl: {start: "09:00", end: "19:00", source: counsel}, fr: {disabled: true}}', RULES
    )
    assert (rules["US-FL"].start, rules["US-FL"].end, rules["US-FL"].max_per_24h) == (time(9), time(19), None)
    assert "FR" not in rules and "US" in rules


def test_the_send_time_is_inside_both_windows():
    legal = legal_window(RULES, recipient("+13055550123", None, NEW_YORK))
    evening = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)  # 20:30 in Miami, inside the campaign's 07:00-22:00
    assert not allowed(EVERY_DAY_LATE, NEW_YORK, legal, evening)
    # 08:00 in Pensacola (Central), 09:00 in Miami: Florida's hours hold in both of its zones
    assert next_allowed(EVERY_DAY_LATE, NEW_YORK, legal, evening) == datetime(2026, 12, 2, 14, tzinfo=UTC)


def test_the_cap_frees_when_the_oldest_of_the_last_three_is_a_day_old():
    legal = legal_window(RULES, recipient("+13055550123", None, NEW_YORK))
    now = datetime(2026, 12, 2, 15, tzinfo=UTC)
    sent = [datetime(2026, 12, 1, 16, tzinfo=UTC), datetime(2026, 12, 2, 10, tzinfo=UTC)]
    assert cap_frees_at(legal, sent, now) is None
    sent.append(datetime(2026, 12, 2, 14, tzinfo=UTC))
    assert cap_frees_at(legal, sent, now) == datetime(2026, 12, 2, 16, tzinfo=UTC)


def test_an_override_that_leaves_no_hour_with_the_federal_rule_is_refused():
    with pytest.raises(ValueError, match=r"US-FL .* and US .* leave no hour to send in"):
        parse_rules('rules: {US-FL: {start: "02:00", end: "03:00"}}', RULES)


def test_a_state_across_two_zones_is_judged_in_both_when_the_contact_has_none():
    """Florida's Panhandle keeps Central time, the rest Eastern, and a number may live in either: without the
    contact's own zone, 08:00-20:00 must hold in both, 08:00 Central to 20:00 Eastern. A January evening:
    01:30 UTC is 20:30 in Tallahassee and 19:30 in Pensacola; 13:30 UTC is 08:30 Eastern but 07:30 Central."""
    florida = legal_window(RULES, recipient("+18502221234", None, CAMPAIGN))
    assert florida is not None and {z.key for z in florida.zones} == {"America/New_York", "America/Chicago"}
    evening, early, fine = (
        datetime(2026, 1, d, h, m, tzinfo=UTC) for d, h, m in ((16, 1, 30), (15, 13, 30), (15, 14, 5))
    )
    assert not allowed(EVERY_DAY_LATE, CAMPAIGN, florida, evening)
    assert not allowed(EVERY_DAY_LATE, CAMPAIGN, florida, early)
    assert allowed(EVERY_DAY_LATE, CAMPAIGN, florida, fine)
    assert next_allowed(EVERY_DAY_LATE, CAMPAIGN, florida, evening) == datetime(
        2026, 1, 16, 14, 0, tzinfo=UTC
    )
    # the contact's own zone is where the law sees them: one zone again
    own = legal_window(RULES, recipient("+18502221234", NEW_YORK, CAMPAIGN))
    assert own is not None and own.zones == (NEW_YORK,)
    assert allowed(EVERY_DAY_LATE, CAMPAIGN, own, early)
    # a US number whose own zones are several (+1 800) is judged in each of them, not in the campaign's
    toll_free = legal_window(RULES, recipient("+18005550199", None, CAMPAIGN))
    assert toll_free is not None and len(toll_free.zones) > 3
