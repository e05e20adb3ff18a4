"""Operating the collector: key rotation, upgrades of the state, errors that name where, option errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ccl.simulator.api import key_fingerprint
from ccl.simulator.server import stamp
from collector import __version__
from collector.timeparse import parse_created_at
from tests.conftest import CCL, ROOT, TEST_KEY, collector_command, collector_env, run_collector

NEW_KEY = "sk-ant-api01-" + "TESTKEY-never-in-output-" + "rotated-2"
STATE_0_1_0 = ROOT / "tests" / "data" / "state-0.1.0"


def write_key(path: Path, key: str) -> None:
    """As an operator (or kubelet's atomic secret update) does: a new 0600 file renamed over the old one."""
    staged = path.with_suffix(".new")
    staged.write_text(key + "\n")
    staged.chmod(0o600)
    os.replace(staged, path)


def wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- key rotation ---------------------------------------------------------------------------------

def test_a_key_file_replaced_during_follow_mode_is_used_from_the_next_request(make_simulator, tmp_path):
    simulator = make_simulator(seed=90, rate=2.0, history=900, live_rate=5.0, usual_delay=(0.0, 0.0))
    old, new = key_fingerprint(TEST_KEY), key_fingerprint(NEW_KEY)
    key_file, state, out = tmp_path / "anthropic.key", tmp_path / "state", tmp_path / "follow.ndjson"
    write_key(key_file, TEST_KEY)
    since = stamp(time.time() - 600)
    follower = subprocess.Popen(
        collector_command("--state-dir", str(state), "--key-file", str(key_file), "--since", since,
                          "--interval", "0.3", "--max-rpm", "0", "--reconcile-every", "1s"),
        env=collector_env(simulator.url, key=None), stdout=out.open("wb"),
        stderr=(tmp_path / "follow.log").open("wb"), cwd=ROOT)
    try:
        wait_until(lambda: simulator.api.keys_used.count(old) >= 4)
        before = len(simulator.api.keys_used)
        rotated_at = time.time()
        write_key(key_file, NEW_KEY)
        wait_until(lambda: new in simulator.api.keys_used)
        # The rotation's last step: the old key is deleted in the Console; from now on it gets 401.
        simulator.api.deactivated_keys.add(TEST_KEY)
        wait_until(lambda: simulator.api.keys_used.count(new) >= 6)
    finally:
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=10) == 0
    used = list(simulator.api.keys_used)
    switch = used.index(new)
    assert set(used[:switch]) == {old} and set(used[switch:]) == {new}  # one switch, never back
    assert switch - before <= 1  # the request after the replacement (one could have been in flight)
    assert simulator.api.statuses[401] == 0
    log = (tmp_path / "follow.log").read_text()
    assert '"level": "ERROR"' not in log and TEST_KEY not in log and NEW_KEY not in log

    final_started = time.time()
    final = run_collector(simulator.url, state, "--once", "--max-rpm", "0", "--key-file", str(key_file), key=None)
    assert final.returncode == 0, final.stderr
    followed = [json.loads(line)["id"] for line in out.read_bytes().splitlines()]
    after_rotation = [a for a in map(json.loads, out.read_bytes().splitlines())
                      if (parse_created_at(a["created_at"]) or 0) > rotated_at + 0.5]
    assert after_rotation, "the follower delivered nothing collected with the new key"
    delivered = Counter(followed + final.ids)
    expected = {a["id"] for a in simulator.store.all_activities()
                if since <= a["created_at"] < stamp(final_started)}
    assert not expected - set(delivered), "activities lost across the key rotation"
    assert max(delivered.values()) == 1, "activities repeated across the key rotation"
    for path in state.iterdir():
        assert TEST_KEY not in path.read_text() and NEW_KEY not in path.read_text()


def test_a_key_file_that_others_can_read_is_refused(make_simulator, tmp_path):
    simulator = make_simulator(seed=91, history=60)
    key_file = tmp_path / "anthropic.key"
    key_file.write_text(TEST_KEY)
    key_file.chmod(0o640)
    done = run_collector(simulator.url, tmp_path / "state", "--once", "--key-file", str(key_file), key=None)
    assert done.returncode == 2 and "can be read by other users (mode 0640): chmod 600 it" in done.stderr


# -- upgrades -------------------------------------------------------------------------------------

def start_at(epoch: float):
    """A clock that starts at `epoch` and runs at the speed of the real one."""
    started = time.time()
    return lambda: epoch + (time.time() - started)


@pytest.mark.parametrize("variant", ["as 0.1.0 wrote it", "without a version"])
def test_the_state_of_0_1_0_is_continued_without_loss_or_repeat(make_simulator, tmp_path, variant):
    state = tmp_path / "state"
    shutil.copytree(STATE_0_1_0, state)
    saved = json.loads((state / "state.json").read_text())
    if variant == "without a version":
        del saved["version"]
        (state / "state.json").write_text(json.dumps(saved))
    # The API's clock 20 minutes after that collector stopped, its history starting where it stopped.
    cursor_at = parse_created_at(saved["cursor_created_at"])
    simulator = make_simulator(seed=92, rate=0.5, history=1200, clock=start_at(cursor_at + 1200),
                               record_requests=False)
    run = run_collector(simulator.url, state, "--once")
    assert run.returncode == 0, run.stderr
    assert "ERROR" not in run.log_messages() and not any(e["level"] == "ERROR" for e in run.logs)
    expected = [a["id"] for a in simulator.store.all_activities()]
    assert len(expected) > 400 and sorted(run.ids) == sorted(expected)  # every one, once
    upgraded = json.loads((state / "state.json").read_text())
    assert upgraded["version"] == 1 and upgraded["written_by"].startswith("claude-compliance-logs ")
    health = json.loads((state / "status.json").read_text())
    assert health["counts"]["cycles"] == 2 and health["counts"]["emitted"] == 53 + len(expected)
    again = run_collector(simulator.url, state, "--once")
    assert again.returncode == 0 and again.ids == []


def test_a_state_of_a_newer_format_is_refused_in_one_line_and_left_as_it_is(make_simulator, tmp_path):
    simulator = make_simulator(seed=93, rate=1.0, history=600)
    state = tmp_path / "state"
    shutil.copytree(STATE_0_1_0, state)
    newer = {**json.loads((state / "state.json").read_text()), "version": 2,
             "written_by": "claude-compliance-logs 0.3.0", "something_new": [1, 2]}
    (state / "state.json").write_text(json.dumps(newer))
    before = (state / "state.json").read_bytes()
    message = (f"{state / 'state.json'} has state format 2, written by claude-compliance-logs 0.3.0; this "
               f"collector (claude-compliance-logs {__version__}) reads formats up to 1. Run that version or a newer "
               "one (upgrade the .pyz or the package on this host); the state was left as it is")
    for mode in (["--once"], []):  # follow mode too: a state it cannot read is not retried, Vector shows the exit
        done = run_collector(simulator.url, state, *mode)
        assert done.returncode == 2 and done.stdout == b""
        assert [e["message"] for e in done.logs if e["level"] == "ERROR"] == [message]
    status = subprocess.run([*CCL, "status", "--state-dir", str(state)], capture_output=True, text=True, cwd=ROOT,
                            timeout=60, check=False)
    assert status.returncode == 2 and status.stderr == f"error: {message}\n"
    assert (state / "state.json").read_bytes() == before


def test_a_backfill_record_of_0_1_0_is_read_and_a_newer_one_refused(make_simulator, tmp_path):
    simulator = make_simulator(seed=94, rate=1.0, history=600)
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(STATE_0_1_0 / "backfill.json", state / "backfill.json")
    window = ["--since", "2025-06-01T00:00:00Z", "--until", "2025-06-02T00:00:00Z"]

    def backfill(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "collector", "backfill", *window, *extra, "--state-dir",
                               str(state), "--log-format", "json"], env=collector_env(simulator.url),
                              capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)

    done = backfill()
    assert done.returncode == 0 and "this backfill is already complete" in done.stderr
    record = json.loads((state / "backfill.json").read_text())
    (state / "backfill.json").write_text(json.dumps({**record, "version": 7}))
    refused = backfill()
    assert refused.returncode == 2 and "backfill.json has state format 7, written by a newer collector" in \
        refused.stderr
    assert backfill("--restart").returncode == 0  # --restart discards it, as it says
    assert json.loads((state / "backfill.json").read_text())["version"] == 1


# -- errors name where ----------------------------------------------------------------------------

def test_once_against_a_refused_port_fails_in_seconds_naming_the_url(tmp_path):
    started = time.monotonic()
    done = run_collector("http://127.0.0.1:9", tmp_path / "state", "--once")
    assert done.returncode == 1
    assert time.monotonic() - started < 15  # not --max-retry-time (5 minutes)
    errors = [e["message"] for e in done.logs if e["level"] == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith(
        "cannot connect to http://127.0.0.1:9/v1/compliance/activities (ConnectError: ")
    assert "is --api-url (or CCL_API_URL) right" in errors[0]


def test_once_still_retries_5xx_and_timeouts(make_simulator, tmp_path):
    simulator = make_simulator("503@1,timeout@2", seed=95, rate=1.0, history=600)
    simulator.timeout_delay = 5
    done = run_collector(simulator.url, tmp_path / "state", "--once", "--request-timeout", "1")
    assert done.returncode == 0, done.stderr
    warnings = [e["error"] for e in done.logs if e["message"] == "request failed, will retry"]
    assert warnings[0].startswith("HTTP 503") and "timed out" in warnings[1]
    assert warnings[1].startswith(f"{simulator.url}/v1/compliance/activities: timed out")


def test_follow_mode_keeps_retrying_a_refused_connection_naming_the_url(tmp_path):
    process = subprocess.Popen(collector_command("--state-dir", str(tmp_path / "state"), "--interval", "1"),
                               env=collector_env("http://127.0.0.1:9"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, cwd=ROOT)
    time.sleep(5)
    assert process.poll() is None  # under Vector: no exit (and respawn loop), it waits for the API
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    logs = [json.loads(line) for line in process.stderr.read().decode().splitlines()]
    retries = [e for e in logs if e["message"] == "request failed, will retry"]
    assert len(retries) >= 2 and all("cannot connect to http://127.0.0.1:9/v1/compliance/activities" in e["error"]
                                     for e in retries)


@pytest.mark.parametrize("command", [["plan"], ["deploy", "--yes"]])
def test_plan_and_deploy_against_a_refused_port_fail_in_seconds_naming_the_url(command):
    env = {**os.environ, "DD_API_URL": "http://127.0.0.1:9", "DD_API_KEY": "k" * 32, "DD_APP_KEY": "a" * 40}
    started = time.monotonic()
    done = subprocess.run([*CCL, *command], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
                          check=False)
    assert done.returncode == 1 and time.monotonic() - started < 30
    assert done.stderr.splitlines()[-1].startswith(
        "error: GET http://127.0.0.1:9/api/v1/logs/config/pipelines: cannot connect (ConnectError: ")
    assert "check DD_API_URL / DD_SITE" in done.stderr


# -- options --------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "collector"], [sys.executable, "-m", "collector", "backfill"], [*CCL, "collect"],
    [*CCL, "backfill"]])
def test_an_option_error_is_one_line(command):
    done = subprocess.run([*command, "--since", "yesterday"], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "error: argument --since: cannot read time 'yesterday'; use RFC 3339" in done.stderr
    assert done.stderr.rstrip().endswith("--help` lists every option)")


def test_status_option_errors_are_one_line_too():
    done = subprocess.run([sys.executable, "-m", "collector", "status", "--max-lag", "soon"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--max-lag" in done.stderr


@pytest.mark.parametrize("args", [["--key", TEST_KEY], [f"--key={TEST_KEY}"], ["--api-key", TEST_KEY],
                                  ["--state-dir", "/tmp/x", TEST_KEY]])
def test_a_key_on_the_command_line_is_refused_and_never_echoed(args):
    for command in ([sys.executable, "-m", "collector"], [*CCL, "collect"], [sys.executable, "-m", "collector",
                                                                           "status"]):
        done = subprocess.run([*command, *args, "--once"], capture_output=True, text=True, cwd=ROOT, timeout=60,
                              check=False)
        assert done.returncode == 2 and TEST_KEY not in done.stderr + done.stdout
        assert "a key is never accepted as an argument" in done.stderr and "--key-file PATH" in done.stderr
        assert done.stderr.count("\n") == 1


def test_options_are_matched_by_their_whole_name_only(tmp_path):
    key_file = tmp_path / "k"
    key_file.write_text(TEST_KEY)
    key_file.chmod(0o600)
    for prefix in ("--key", "--key-f"):  # never taken for --key-file, even with a path after it
        done = subprocess.run([sys.executable, "-m", "collector", prefix, str(key_file), "--once"],
                              capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
                              env=collector_env("http://127.0.0.1:9"))
        assert done.returncode == 2 and "cannot connect" not in done.stderr
    assert "unrecognized arguments: --key-f " in done.stderr
    abbreviated = subprocess.run([sys.executable, "-m", "collector", "--state", str(tmp_path), "--once"],
                                 capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert abbreviated.returncode == 2 and "unrecognized arguments: --state " in abbreviated.stderr
