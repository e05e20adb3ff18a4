"""Faults and refusals: retried when that can help, a clear exit code and message when it cannot."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter

import pytest

from tests.conftest import (
    ADMIN_TEST_KEY,
    NO_DELAY,
    ROOT,
    TEST_KEY,
    collector_command,
    collector_env,
    history_ids,
    run_collector,
)


@pytest.mark.parametrize("faults", [
    "429@2,503@4,502@6,504@8,529@10",
    "500=0.3",
    "drop@2-3",
    "garbage@2,429-no-retry-after@3",
])
def test_transient_faults_are_retried_and_nothing_is_lost_or_repeated(make_simulator, tmp_path, faults):
    simulator = make_simulator(faults, seed=10, rate=5.0, history=3600, usual_delay=NO_DELAY)  # ~18,000 rows, 4 pages
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--since", "2h", "--max-rpm", "0")

    assert run.returncode == 0, run.stderr
    assert max(Counter(run.ids).values()) == 1
    assert history_ids(simulator, 0) <= set(run.ids)
    assert "request failed, will retry" in run.log_messages("WARNING")


def test_a_timeout_is_retried(make_simulator, tmp_path):
    simulator = make_simulator("timeout@1", seed=11, rate=1.0, history=600)
    simulator.timeout_delay = 3
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--request-timeout", "1")
    assert run.returncode == 0, run.stderr
    assert any("timed out" in entry.get("error", "") for entry in run.logs)
    assert history_ids(simulator, time.time() - 3600) <= set(run.ids)


def test_rate_limit_429_waits_retry_after_and_keeps_the_cursor(make_simulator, tmp_path):
    simulator = make_simulator("429@1", seed=12, rate=1.0, history=600)
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--max-rpm", "0")
    assert run.returncode == 0, run.stderr
    retries = [entry for entry in run.logs if entry["message"] == "request failed, will retry"]
    assert len(retries) == 1 and "HTTP 429 rate_limit_error" in retries[0]["error"]
    assert retries[0]["retry_in_seconds"] == 1  # the retry-after header, not the backoff
    assert max(Counter(run.ids).values()) == 1
    assert history_ids(simulator, 0) <= set(run.ids)


def test_slows_down_before_the_shared_limit_is_hit(make_simulator, tmp_path):
    simulator = make_simulator(seed=12, rate=1.0, history=600, rate_limit=3)
    simulator.api.rate_window = 3.0  # a 3-per-3-seconds org budget, shared with nobody
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--max-rpm", "0")
    assert run.returncode == 0, run.stderr
    assert simulator.api.statuses[429] == 0
    assert "the organization's request budget runs low; slowing down" in run.log_messages("INFO")


def test_a_deterministic_500_is_not_retried_and_exits_1(make_simulator, tmp_path):
    simulator = make_simulator("500-final@1", seed=13, history=60)
    run = run_collector(simulator.url, tmp_path / "state", "--once")
    assert run.returncode == 1
    assert simulator.api.requests_seen == 1
    assert "deterministic failure, not retried" in run.stderr
    assert run.stdout == b""


def test_once_gives_up_after_max_retry_time_with_exit_1(make_simulator, tmp_path):
    simulator = make_simulator("503", seed=14, history=60)
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--max-retry-time", "3s")
    assert run.returncode == 1
    assert "gave up after" in run.stderr
    assert run.seconds < 20


@pytest.mark.parametrize(("faults", "key", "cause", "advice"), [
    ("not-enabled", TEST_KEY, "not_enabled", "Compliance API is not enabled"),
    ("403", ADMIN_TEST_KEY, "permission", "read:compliance_activities"),
    ("401", TEST_KEY, "auth", "invalid, deactivated or expired"),
    ("", "sk-ant-api03-" + "a-claude-api-key-not-for-compliance", "not_found", "wrong type"),
    ("", "sk-ant-api01-" + "short", "auth", "invalid, deactivated or expired"),
], ids=["not-enabled", "missing-scope", "revoked-key", "claude-api-key", "malformed-key"])  # never a key in an id
def test_refusals_exit_3_and_say_what_to_do(make_simulator, tmp_path, faults, key, cause, advice):
    simulator = make_simulator(faults, seed=15, history=60)
    run = run_collector(simulator.url, tmp_path / "state", "--once", key=key)
    assert run.returncode == 3, run.stderr
    errors = [entry for entry in run.logs if entry["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["cause"] == cause
    assert advice in errors[0]["message"]
    assert errors[0].get("request_id", "").startswith("req_")
    assert run.stdout == b""


def test_no_key_is_a_usage_error_before_any_request(make_simulator, tmp_path):
    simulator = make_simulator(seed=16, history=60)
    run = run_collector(simulator.url, tmp_path / "state", "--once", key=None)
    assert run.returncode == 2
    assert "set ANTHROPIC_COMPLIANCE_KEY or pass --key-file" in run.stderr
    assert simulator.api.requests_seen == 0


def test_key_file_is_read_and_anthropic_base_url_is_ignored(make_simulator, tmp_path):
    simulator = make_simulator(seed=17, rate=1.0, history=300)
    key_file = tmp_path / "key"
    key_file.write_text(TEST_KEY + "\n")
    key_file.chmod(0o600)
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--key-file", str(key_file), key=None,
                        ANTHROPIC_BASE_URL="http://127.0.0.1:9")
    assert run.returncode == 0, run.stderr
    assert run.activities


def test_follow_mode_logs_a_refusal_and_keeps_retrying_slowly(make_simulator, tmp_path):
    simulator = make_simulator("not-enabled@1-2", seed=18, rate=1.0, history=300)
    process = subprocess.Popen(
        collector_command("--state-dir", str(tmp_path / "state"), "--refused-retry", "1s", "--interval", "0.5"),
        env=collector_env(simulator.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        time.sleep(4)
        assert process.poll() is None, "a refusal in follow mode must not exit"
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    logs = [json.loads(line) for line in stderr.decode().splitlines()]
    refusals = [entry for entry in logs if entry["level"] == "ERROR"]
    assert len(refusals) == 2 and all(entry["cause"] == "not_enabled" for entry in refusals)
    assert refusals[0]["retry_in_seconds"] == 1
    # Once the API answers again, the feed flows.
    assert stdout.count(b"\n") > 0
    assert process.returncode == 0


def test_a_corrupt_state_file_is_a_clear_error_not_a_restart(make_simulator, tmp_path):
    simulator = make_simulator(seed=19, rate=1.0, history=300)
    state = tmp_path / "state"
    assert run_collector(simulator.url, state, "--once").returncode == 0
    (state / "state.json").write_text('{"version": 1, "cursor": "pos1_abc", "recent": ')
    run = run_collector(simulator.url, state, "--once")
    assert run.returncode == 2
    assert "state.json is corrupt" in run.stderr and "move it aside" in run.stderr
    assert run.stdout == b""
    assert (state / "state.json").read_text().endswith('"recent": ')  # untouched


def test_a_state_file_of_the_wrong_shape_is_rejected(make_simulator, tmp_path):
    simulator = make_simulator(seed=20, history=60)
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text('{"version": 1, "recent": {"activity_x": "yesterday"}}')
    run = run_collector(simulator.url, state, "--once")
    assert run.returncode == 2
    assert "`recent` must map activity ids to epoch seconds" in run.stderr


def test_two_collectors_cannot_share_a_state_dir(make_simulator, tmp_path):
    simulator = make_simulator(seed=21, rate=1.0, history=300)
    state = tmp_path / "state"
    follower = subprocess.Popen(collector_command("--state-dir", str(state), "--interval", "30"),
                                env=collector_env(simulator.url), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.time() + 10
        while not (state / "state.json").exists() and time.time() < deadline:
            time.sleep(0.1)
        second = run_collector(simulator.url, state, "--once", timeout=30)
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.communicate(timeout=10)
    assert second.returncode == 2
    assert f"in use by another collector (pid {follower.pid})" in second.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "yesterday"], "cannot read time 'yesterday'"),
    (["--overlap", "30s"], "--overlap must be longer than 1 minute"),
    (["--activity-type", "a", "--exclude-activity-type", "b"], "not allowed with argument"),
    (["--interval", "0"], "must be more than zero"),
])
def test_bad_options_exit_2_with_a_message(tmp_path, args, message):
    run = run_collector("http://127.0.0.1:9", tmp_path / "state", "--once", *args)
    assert run.returncode == 2
    assert message in run.stderr
