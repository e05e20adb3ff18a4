"""The enterprise profile: the rates it documents, shapes the catalogue allows, a stable timeline."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime

import pytest

from ccl.content.catalog import activity_types, organization_is_null
from ccl.simulator import Simulator
from ccl.simulator.enterprise import DAY, ORG_WORKDAY, PERSON_DAY, EnterpriseProfile

MONDAY = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
PEOPLE = 400


@pytest.fixture(scope="module")
def week() -> list[dict]:
    profile = EnterpriseProfile(seed=3, people=PEOPLE)
    return list(profile.activities(MONDAY, MONDAY + 7 * DAY))


def _per_day(activities: list[dict]) -> dict[int, Counter]:
    days: dict[int, Counter] = {}
    for activity in activities:
        moment = datetime.fromisoformat(activity["created_at"]).timestamp()
        days.setdefault(int((moment - MONDAY) // DAY), Counter())[activity["type"]] += 1
    return days


def test_working_days_follow_the_documented_rates(week: list[dict]) -> None:
    tuesday = _per_day(week)[1]
    working = PEOPLE * 0.9
    # Chat views and creations per working person, within 10% of the documented means.
    assert tuesday["claude_chat_viewed"] == pytest.approx(working * PERSON_DAY["chat_viewed"], rel=0.1)
    assert tuesday["claude_chat_created"] == pytest.approx(working * PERSON_DAY["chat_created"], rel=0.1)
    # One successful sign-in per session, 1.3 sessions a day, 92% of them SSO.
    sign_ins = sum(tuesday[name] for name in ("sso_login_succeeded", "magic_link_login_succeeded",
                                               "social_login_succeeded"))
    assert sign_ins == pytest.approx(working * 1.3, rel=0.15)
    # The collector's key polls every 15 s, day and night; the audit key 24 times a day.
    assert tuesday["compliance_api_accessed"] == 86400 // 15 + 24
    # Rare administration stays rare: a few a day at most.
    assert tuesday["claude_user_role_updated"] + tuesday["claude_organization_settings_updated"] <= 6
    assert tuesday["scim_user_created"] <= 3 * ORG_WORKDAY["hire"] + 3


def test_weekends_are_quiet_but_the_collector_keeps_polling(week: list[dict]) -> None:
    days = _per_day(week)
    saturday, tuesday = days[5], days[1]
    # 5% of people, a short session at a tenth of the rates (their sign-ins are whole).
    assert sum(saturday.values()) - saturday["compliance_api_accessed"] < \
        0.1 * (sum(tuesday.values()) - tuesday["compliance_api_accessed"])
    assert saturday["compliance_api_accessed"] == 86400 // 15 + 24


def test_every_activity_has_the_shape_the_catalogue_gives(week: list[dict]) -> None:
    catalogue = activity_types()
    for activity in week:
        entry = catalogue[activity["type"]]
        allowed = entry.get("actor_types")
        if allowed:
            assert activity["actor"]["type"] in allowed, activity
        assert (activity["organization_id"] is None) == organization_is_null(activity["type"]), activity
    assert len({activity["id"] for activity in week}) == len(week)


def test_the_timeline_is_ordered_and_the_same_seed_gives_the_same_days(week: list[dict]) -> None:
    moments = [datetime.fromisoformat(activity["created_at"]).timestamp() for activity in week]
    assert moments == sorted(moments)
    again = list(EnterpriseProfile(seed=3, people=PEOPLE).activities(MONDAY, MONDAY + DAY))
    assert [activity["id"] for activity in again] == [activity["id"] for activity in week[:len(again)]]


def test_a_departed_employee_is_never_active_again(week: list[dict]) -> None:
    # A removed account cannot sign in: a leaver's activity after their removal would be a
    # deprovisioning failure, which the rule removed-user-signed-in reports.
    removed = {activity["deleted_user_id"]: datetime.fromisoformat(activity["created_at"]).timestamp()
               for activity in week if activity["type"] == "org_user_deleted"}
    assert len(removed) >= 5
    late = [activity for activity in week if activity["actor"].get("user_id") in removed
            and datetime.fromisoformat(activity["created_at"]).timestamp() > removed[activity["actor"]["user_id"]]]
    assert late == []


def test_offices_share_addresses_and_nobody_outside_the_vpn_travels_faster_than_a_plane(week: list[dict]) -> None:
    sign_ins = [activity for activity in week if activity["type"] == "sso_login_succeeded"]
    people_per_address = Counter()
    seen: dict[str, set] = {}
    for activity in sign_ins:
        seen.setdefault(activity["actor"]["ip_address"], set()).add(activity["actor"]["user_id"])
    people_per_address.update({address: len(users) for address, users in seen.items()})
    assert people_per_address.most_common(1)[0][1] >= 50  # an office NAT address
    profile = EnterpriseProfile(seed=3, people=PEOPLE)
    vpn_users = {employee.person.user_id for employee in profile.population.employees if employee.vpn}
    offices = {ip: office for office in _offices() for ip in office.nat}
    last: dict[str, tuple[float, object]] = {}
    for activity in sign_ins:
        user, address = activity["actor"]["user_id"], activity["actor"]["ip_address"]
        office = offices.get(address)
        if office is None or user in vpn_users:
            continue
        moment = datetime.fromisoformat(activity["created_at"]).timestamp()
        if user in last and last[user][1] is not office:
            hours = (moment - last[user][0]) / 3600
            assert hours >= 12, (user, last[user], office)
        last[user] = (moment, office)


def _offices():
    from ccl.simulator.enterprise import OFFICES

    return OFFICES


def test_the_simulator_serves_the_profile() -> None:
    simulator = Simulator(seed=5, history=1800, profile="enterprise", people=300, late_fraction=0,
                          usual_delay=(0, 0))
    activities = simulator.store.all_activities()
    assert activities
    assert {activity["organization_id"] for activity in activities} - {None} == \
        {simulator.population.orgs[0].org_id}
    kinds = Counter(activity["type"] for activity in activities)
    assert kinds["compliance_api_accessed"] >= math.floor(1800 / 15) - 1


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        Simulator(profile="huge")
