"""`status --check`: exit 0 when healthy, 1 when not, the reason in one line; `--json` times in RFC 3339."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.health import judge
from tests.conftest import CCL, ROOT, collector_command, collector_env, run_collector

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
STATUS_COMMANDS = {"python -m collector status": [sys.executable, "-m", "collector", "status"],
                   "ccl status": [*CCL, "status"]}


def status(state: Path, *args: str, command: str = "python -m collector status") -> subprocess.CompletedProcess:
    return subprocess.run([*STATUS_COMMANDS[command], "--state-dir", str(state), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=False)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.stdout.count("\n") == 1 and not done.stderr, (done.stdout, done.stderr)
    return done.stdout.strip()


def follow(url: str, state: Path, tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(collector_command("--state-dir", str(state), "--interval", "0.5", "--max-rpm", "0"),
                            env=collector_env(url), stdout=subprocess.DEVNULL,
                            stderr=(tmp_path / "follower.log").open("wb"), cwd=ROOT)


def wait_for(check, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.parametrize("command", list(STATUS_COMMANDS))
def test_healthy_while_a_collector_follows_and_unhealthy_once_it_stops(make_simulator, tmp_path, command):
    simulator = make_simulator(seed=80, rate=1.0, history=600, live_rate=1.0)
    state = tmp_path / "state"
    process = follow(simulator.url, state, tmp_path)
    try:
        healthy = wait_for(lambda: (done := status(state, "--check", command=command)).returncode == 0 and done)
        assert re.fullmatch(rf"healthy: running \(pid {process.pid}\), caught up with the feed \d+s ago, "
                            r"no error since", one_line(healthy))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    stopped = status(state, "--check", command=command)
    assert stopped.returncode == 1
    assert one_line(stopped).startswith("unhealthy: no collector is running on this state directory")
    # A collector run with --once on a schedule (Fluent Bit) is healthy between runs.
    assert one_line(status(state, "--check", "--allow-not-running", command=command)).startswith("healthy: ")


def test_unhealthy_when_the_last_error_is_newer_than_the_last_success(make_simulator, tmp_path):
    simulator = make_simulator(seed=81, rate=1.0, history=600)
    state = tmp_path / "state"
    assert run_collector(simulator.url, state, "--once").returncode == 0
    assert status(state, "--check", "--allow-not-running").returncode == 0
    failed = run_collector("http://127.0.0.1:9", state, "--once")
    assert failed.returncode == 1
    done = status(state, "--check", "--allow-not-running")
    assert done.returncode == 1
    assert re.fullmatch(r"unhealthy: the last error \(\d+s ago\) is newer than the last success \(\d+s ago\): "
                        r"\[ApiFailure\] cannot connect to http://127\.0\.0\.1:9/v1/compliance/activities .*",
                        one_line(done))
    # The next success clears it.
    assert run_collector(simulator.url, state, "--once").returncode == 0
    assert status(state, "--check", "--allow-not-running").returncode == 0


def test_unhealthy_when_the_collector_last_caught_up_longer_ago_than_max_lag(make_simulator, tmp_path):
    simulator = make_simulator(seed=82, rate=1.0, history=600)
    state = tmp_path / "state"
    assert run_collector(simulator.url, state, "--once").returncode == 0
    time.sleep(2.1)
    late = status(state, "--check", "--allow-not-running", "--max-lag", "1s")
    assert late.returncode == 1
    assert re.fullmatch(r"unhealthy: the collector last caught up with the feed \d+s ago, more than --max-lag 1s: "
                        r"it is stuck .*", one_line(late))
    assert status(state, "--check", "--allow-not-running").returncode == 0  # the default --max-lag is 10m


def test_the_lag_is_the_time_since_the_last_success_not_the_age_of_the_newest_activity():
    now = 2_000_000_000.0
    quiet = {"running_pid": 42, "last_success_at": now - 30, "newest_activity_at": "2033-05-17T00:00:00Z",
             "cursor_age_seconds": 86400.0, "last_error": None}
    assert judge(quiet, now=now).healthy  # a day without activity is a quiet feed, not a lagging collector
    assert not judge(quiet, max_lag=600, now=now + 571).healthy
    assert judge(quiet, max_lag=600, now=now + 570).healthy
    first_run = {"running_pid": 42, "last_success_at": None, "last_error": None, "first_run_in_progress": True,
                 "first_run_since": "2033-05-10T00:00:00Z"}
    assert judge(first_run, now=now).reason == \
        "no cycle has completed yet; the first run is reading back to 2033-05-10T00:00:00Z"
    older_error = {**quiet, "last_error": {"at": now - 40, "cause": "ApiFailure", "message": "x"}}
    assert judge(older_error, now=now).healthy


def test_a_missing_or_unreadable_state_is_unhealthy_in_one_line(tmp_path):
    missing = status(tmp_path / "nope", "--check")
    assert missing.returncode == 1
    assert one_line(missing) == f"unhealthy: no state directory at {tmp_path / 'nope'}; has a collector run with " \
                                "this --state-dir?"
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "state.json").write_text(json.dumps({"version": 2, "written_by": "claude-compliance-logs 0.9.0"}))
    done = status(newer, "--check", "--json")
    assert done.returncode == 1
    health = json.loads(done.stdout)["health"]
    assert health["healthy"] is False and "has state format 2, written by claude-compliance-logs 0.9.0" in \
        health["reason"]
    assert status(newer).returncode == 2  # without --check: an error, as before


def test_json_gives_every_time_in_rfc3339(make_simulator, tmp_path):
    simulator = make_simulator(seed=83, rate=1.0, history=600)
    state = tmp_path / "state"
    assert run_collector(simulator.url, state, "--once").returncode == 0
    backfill = [sys.executable, "-m", "collector", "backfill", "--since", "20m", "--until", "10m", "--state-dir",
                str(state)]
    assert subprocess.run(backfill, env=collector_env(simulator.url), capture_output=True, cwd=ROOT,
                          timeout=60).returncode == 0
    failed = run_collector("http://127.0.0.1:9", state, "--once")
    assert failed.returncode == 1
    done = status(state, "--json", "--check", "--allow-not-running")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    times = dict(times_in(report))
    assert {"checked_at", "last_success_at", "last_reconcile_at", "last_error.at", "newest_activity_at",
            "backfill.started_at", "backfill.since", "backfill.until"} <= set(times)
    assert all(isinstance(value, str) and RFC3339.match(value) for value in times.values()), times
    assert report["health"]["healthy"] is False and report["health"]["max_lag_seconds"] == 600


def times_in(value, path: str = ""):
    """(path, value) of every field that holds a time: named `at` or `*_at`, or `since`/`until`."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if (key == "at" or key.endswith("_at") or key in ("since", "until")) and item is not None:
                yield child, item
            else:
                yield from times_in(item, child)


def test_the_status_of_a_0_1_0_state_dir_reads_its_epoch_times_as_rfc3339(tmp_path):
    state = tmp_path / "state"
    shutil.copytree(ROOT / "tests" / "data" / "state-0.1.0", state)
    report = json.loads(status(state, "--json").stdout)
    assert report["last_success_at"] == "2026-12-02T02:22:50.011022Z"  # 1796178170.0110223 in status.json
    assert report["backfill"]["started_at"].startswith("2026-12-02T02:28:06.")
    assert report["counts"]["cycles"] == 1
