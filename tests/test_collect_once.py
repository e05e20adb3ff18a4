"""`python -m collector --once` against the simulator: every activity exactly once, as returned."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime

from ccl.simulator.server import stamp
from tests.conftest import history_ids, run_collector


def since_arg(seconds_ago: float) -> tuple[str, float]:
    epoch = time.time() - seconds_ago
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), epoch


def test_first_run_emits_every_activity_since_the_start_once_and_unchanged(make_simulator, tmp_path):
    simulator = make_simulator(seed=1, rate=4.0, history=3 * 3600)  # ~43,000 rows, 9 pages
    since, since_epoch = since_arg(2 * 3600)

    run = run_collector(simulator.url, tmp_path / "state", "--once", "--since", since, "--max-rpm", "0")

    assert run.returncode == 0, run.stderr
    emitted = run.activities
    counts = Counter(activity["id"] for activity in emitted)
    assert [i for i, n in counts.items() if n > 1] == []
    assert history_ids(simulator, since_epoch) <= set(counts)
    # Nothing older than --since, nothing invented, nothing altered: each line equals the stored object.
    stored = {activity["id"]: activity for activity in simulator.store.all_activities()}
    for activity in emitted:
        assert activity == stored[activity["id"]]
        assert activity["created_at"] >= since
    # Fields at the root, no wrapper: the raw line is the activity itself.
    first_line = json.loads(run.stdout.splitlines()[0])
    assert set(first_line) >= {"id", "type", "created_at", "actor"}


def test_a_second_run_continues_from_the_cursor_without_repeating(make_simulator, tmp_path):
    simulator = make_simulator(seed=2, rate=2.0, history=1800)
    state = tmp_path / "state"
    first = run_collector(simulator.url, state, "--once", "--since", "1h")
    arrived = [simulator.add(simulator.factory.make(kind, stamp(time.time())), delay=0)["id"]
               for kind in ("claude_chat_created", "sso_login_succeeded", "api_key_created")]
    second = run_collector(simulator.url, state, "--once")

    assert first.returncode == second.returncode == 0, second.stderr
    assert set(first.ids).isdisjoint(second.ids)
    assert set(arrived) <= set(second.ids)


def test_late_indexed_activities_are_found_by_the_overlap_repoll(make_simulator, tmp_path):
    simulator = make_simulator(seed=3, rate=1.0, history=1200)
    state = tmp_path / "state"
    now = time.time()
    late = []
    for minutes_ago in (9, 6, 3):
        activity = simulator.factory.make("org_sso_toggled", stamp(now - minutes_ago * 60), enabled=False)
        # Indexed 4 seconds from now: the first run's cursor will already be past it.
        simulator.add(activity, delay=(now + 4) - (now - minutes_ago * 60))
        late.append(activity["id"])

    first = run_collector(simulator.url, state, "--once", "--since", "30m")
    assert first.returncode == 0
    assert not set(late) & set(first.ids)
    time.sleep(4.5)
    second = run_collector(simulator.url, state, "--once")

    assert second.returncode == 0, second.stderr
    assert set(late) <= set(second.ids)
    assert set(first.ids).isdisjoint(second.ids)
    caught_up = [entry for entry in second.logs if entry["message"] == "caught up"][-1]
    assert caught_up["late_found"] >= 3


def test_filters_pass_through_to_the_api(make_simulator, tmp_path):
    simulator = make_simulator(seed=4, rate=3.0, history=1800)
    run = run_collector(simulator.url, tmp_path / "a", "--once", "--activity-type", "claude_chat_viewed",
                        "--activity-type", "sso_login_succeeded")
    assert run.returncode == 0, run.stderr
    assert run.activities
    assert {a["type"] for a in run.activities} <= {"claude_chat_viewed", "sso_login_succeeded"}

    excluded = run_collector(simulator.url, tmp_path / "b", "--once", "--exclude-activity-type",
                             "claude_chat_viewed")
    assert excluded.returncode == 0
    assert "claude_chat_viewed" not in {a["type"] for a in excluded.activities}

    org = simulator.population.orgs[1].org_id
    scoped = run_collector(simulator.url, tmp_path / "c", "--once", "--organization-id", org)
    assert scoped.activities and {a["organization_id"] for a in scoped.activities} == {org}


def test_an_unknown_activity_type_is_a_usage_error_naming_the_parameter(make_simulator, tmp_path):
    simulator = make_simulator(seed=5, history=60)
    run = run_collector(simulator.url, tmp_path / "s", "--once", "--activity-type", "claude_chat_vieweed")
    assert run.returncode == 2
    assert "activity_types[].0: Input is not one of the permitted values" in run.stderr


def test_empty_window_then_activity_arrives(make_simulator, tmp_path):
    simulator = make_simulator(seed=6, history=0)
    simulator.api.on_answered = None  # no compliance_api_accessed rows: the feed is really empty
    state = tmp_path / "state"
    empty = run_collector(simulator.url, state, "--once")
    assert empty.returncode == 0 and empty.activities == []
    activity = simulator.add(simulator.factory.make("org_sso_toggled", stamp(time.time() - 1)), delay=0)
    later = run_collector(simulator.url, state, "--once")
    assert later.ids == [activity["id"]]


def test_replay_on_start_reemits_recent_history_once(make_simulator, tmp_path):
    simulator = make_simulator(seed=7, rate=1.0, history=1800)
    state = tmp_path / "state"
    first = run_collector(simulator.url, state, "--once", "--since", "30m")
    replay = run_collector(simulator.url, state, "--once", "--replay-on-start", "5m")
    recent = {a["id"] for a in first.activities if a["created_at"] >= stamp(time.time() - 290)}
    assert recent and recent <= set(replay.ids)
    assert max(Counter(replay.ids).values()) == 1
