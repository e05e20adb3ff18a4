"""The simulator keeps the Compliance API contract of the reference (compliance-api.md)."""

from __future__ import annotations

import time

import httpx
import pytest

from ccl.content.catalog import activity_types
from ccl.simulator import FaultPlan, FaultSpecError, Simulator
from ccl.simulator.scenarios import SCENARIOS
from ccl.simulator.server import stamp
from tests.conftest import TEST_KEY

PATH = "/v1/compliance/activities"


@pytest.fixture(scope="module")
def sim():
    # No indexing delay: the newest history rows must be visible the moment the walk starts.
    simulator = Simulator(seed=80, rate=2.0, history=3600, late_fraction=0, usual_delay=(0.0, 0.0),
                          scenarios=list(SCENARIOS)).start()
    simulator.rate = 0
    simulator.record_requests = False
    yield simulator
    simulator.stop()


def get(sim, key=TEST_KEY, **params):
    headers = {"x-api-key": key} if key else {}
    return httpx.get(sim.url + PATH, params=params, headers=headers)


def keys(page):
    return [(a["created_at"], a["id"]) for a in page["data"]]


def test_pages_are_newest_first_and_after_id_walks_older_without_gaps(sim):
    seen, cursor = [], None
    while True:
        params = {"limit": 1000, **({"after_id": cursor} if cursor else {})}
        page = get(sim, **params).json()
        seen += keys(page)
        if not page["has_more"]:
            break
        cursor = page["last_id"]
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == len(sim.store.all_activities())


def test_before_id_returns_the_rows_right_next_to_the_cursor(sim):
    oldest_first = sorted(keys(get(sim, limit=5000).json()))
    middle = get(sim, limit=1, **{"created_at.lte": oldest_first[100][0]}).json()
    newer = get(sim, limit=10, before_id=middle["first_id"]).json()
    assert sorted(keys(newer)) == oldest_first[101:111]
    assert keys(newer) == sorted(keys(newer), reverse=True)  # still in result order
    assert newer["has_more"] is True


def test_order_asc_reverses_and_cursors_follow_the_order(sim):
    page = get(sim, limit=50, order="asc").json()
    assert keys(page) == sorted(keys(page))
    following = get(sim, limit=50, order="asc", after_id=page["last_id"]).json()
    assert keys(following)[0] > keys(page)[-1]


def test_cursors_are_opaque_and_a_bad_one_is_400(sim):
    page = get(sim, limit=1).json()
    assert not page["first_id"].startswith("activity_")  # never buildable from an id
    answer = get(sim, after_id=page["data"][0]["id"])
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("Invalid activity_id format")


def test_an_empty_page_has_null_cursors(sim):
    page = get(sim, **{"created_at.gte": stamp(time.time() + 3600)}).json()
    assert page == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_created_at_filters_tile_with_gte_and_lt(sim):
    boundary = stamp(time.time() - 1800)
    before = get(sim, limit=5000, **{"created_at.lt": boundary}).json()["data"]
    after = get(sim, limit=5000, **{"created_at.gte": boundary}).json()["data"]
    assert all(a["created_at"] < boundary for a in before) and all(a["created_at"] >= boundary for a in after)
    assert len(before) + len(after) == len(sim.store.all_activities())


@pytest.mark.parametrize(("params", "message"), [
    ({"limit": 5001}, "limit: Input should be less than or equal to 5000"),
    ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
    ({"created_at[gte]": "2026-01-01T00:00:00Z"}, "Did you mean 'created_at.gte'?"),
    ({"created_at.gte": "2024-01-01"}, "invalid timestamp format"),
    ({"activity_types[]": ["claude_chat_viewed", "no_such_type"]}, "activity_types[].1: Input is not one of"),
    ({"activity_types[]": "claude_chat_viewed", "exclude_activity_types[]": "sso_login_failed"}, "cannot be used"),
    ({"after_id": "pos1_x", "before_id": "pos1_y"}, "Only one of after_id and before_id"),
    ({"order": "newest"}, "order: Input should be 'asc' or 'desc'"),
    ({"page": "2"}, "Unknown query parameter: 'page'"),
])
def test_invalid_requests_get_the_documented_400(sim, params, message):
    answer = get(sim, **params)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert message in body["error"]["message"]
    assert answer.headers["request-id"].startswith("req_")


@pytest.mark.parametrize(("key", "status", "error_type"), [
    (None, 404, "not_found_error"),
    ("sk-ant-api03-" + "x" * 30, 404, "not_found_error"),
    ("sk-ant-api01-" + "short", 401, "authentication_error"),
], ids=["no-key", "claude-api-key", "malformed-key"])
def test_keys_are_checked_as_the_newest_docs_say(sim, key, status, error_type):
    answer = get(sim, key=key)
    assert answer.status_code == status
    assert answer.json()["error"]["type"] == error_type


def test_type_filters_and_scenarios_use_catalog_types(sim):
    logins = get(sim, limit=5000, **{"activity_types[]": "sso_login_failed"}).json()["data"]
    assert len(logins) >= 15  # the brute-force scenario's failures, at least
    assert {a["type"] for a in logins} == {"sso_login_failed"}
    assert {a["actor"]["type"] for a in logins} == {"unauthenticated_user_actor"}
    every = sim.store.all_activities()
    assert {a["type"] for a in every} <= set(activity_types())
    assert len({a["actor"]["type"] for a in every}) >= 6
    for scenario in ("primary_owner_transferred", "org_compliance_api_settings_updated", "admin_api_key_deleted"):
        assert any(a["type"] == scenario for a in every)


def test_activities_carry_the_documented_fields(sim):
    every = sim.store.all_activities()
    for activity in every[:500]:
        assert set(activity) >= {"id", "created_at", "organization_id", "organization_uuid", "actor", "type"}
        documented = set(activity_types()[activity["type"]]["fields"])
        extra = set(activity) - {"id", "created_at", "organization_id", "organization_uuid", "actor", "type"}
        assert extra <= documented | {"auth_method", "mfa_method", "provider"}, activity["type"]
    assert all(a["organization_id"] is None for a in every if a["type"].startswith("sso_login"))


def test_rate_limit_answers_429_with_retry_after_and_headers():
    simulator = Simulator(seed=81, rate=0, history=0, rate_limit=2).start()
    try:
        answers = [get(simulator) for _ in range(3)]
    finally:
        simulator.stop()
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["anthropic-ratelimit-requests-limit"] == "2"
    assert answers[1].headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert int(answers[2].headers["retry-after"]) >= 1
    assert "600 requests per minute" not in answers[2].json()["error"]["message"]
    assert answers[2].json()["error"]["type"] == "rate_limit_error"


def test_each_answered_request_is_recorded_as_compliance_api_accessed():
    simulator = Simulator(seed=82, rate=0, history=0, usual_delay=(0, 0)).start()
    try:
        get(simulator, limit=10)
        get(simulator, limit=5001)
        get(simulator, key=None)
        records = [a for a in simulator.store.all_activities() if a["type"] == "compliance_api_accessed"]
    finally:
        simulator.stop()
    assert [r["status_code"] for r in records] == [200, 400]  # the keyless request reached no feed
    assert all(r["actor"]["type"] == "api_actor" and r["actor"]["api_key_id"].startswith("apikey_") for r in records)
    assert records[0]["url"].startswith(PATH + "?limit=10")


def test_late_rows_are_invisible_until_indexed():
    simulator = Simulator(seed=83, rate=0, history=0, record_requests=False).start()
    try:
        row = simulator.add(simulator.factory.make("org_sso_toggled", stamp(time.time() - 120)), delay=121.5)
        assert get(simulator).json()["data"] == []
        time.sleep(1.6)
        assert [a["id"] for a in get(simulator).json()["data"]] == [row["id"]]
    finally:
        simulator.stop()


def test_fault_specs_parse_and_reject_nonsense():
    plan = FaultPlan.parse("429=1,503@2-3")
    assert [plan.pick(n) for n in (1, 2)] == ["429", "429"]
    assert FaultPlan.parse("503@2-3").pick(3) == "503"
    for bad in ("418", "429=2", "503@5-2", "drop@x"):
        with pytest.raises(FaultSpecError):
            FaultPlan.parse(bad)
