"""A hostile host: FIFOs, directories and deleted files where the collector keeps its own, absurd
options, a readable key, an insecure URL. One clear message each, never a hang or a traceback."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from collector.settings import collect_parser, settings_from_args
from tests.conftest import CCL, ROOT, TEST_KEY, collector_command, collector_env, run_collector


def status(state, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CCL, "status", "--state-dir", str(state), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=30)


def one_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [json.loads(line) for line in stderr.splitlines() if '"ERROR"' in line]
    assert len(errors) == 1, stderr
    return errors[0]["message"]


@pytest.mark.parametrize(("url", "message"), [
    ("http://compliance-proxy.invalid", "plain http:// to another host"),
    ("http://192.0.2.1:8080", "plain http:// to another host"),
    ("ftp://api.anthropic.com", "must be an https:// URL"),
    ("http://[::1", "is not a valid URL"),
    ("https://api.anthropic.com/\nx", "control characters"),  # (a NUL cannot reach a process: argv and env)
    ("https://user:pw@api.anthropic.com", "credentials"),
])
def test_an_api_url_the_key_must_not_go_to_is_refused_before_any_request(tmp_path, url, message):
    run = run_collector(url, tmp_path / "state", "--once", "--request-timeout", "30")
    assert run.returncode == 2
    assert message in one_error(run.stderr)
    assert run.seconds < 10 and not (tmp_path / "state").exists()


def test_insecure_urls_are_accepted_on_loopback_or_when_asked_for(make_simulator, tmp_path):
    parser = collect_parser("python -m collector")
    remote = settings_from_args(parser.parse_args(["--api-url", "http://10.1.2.3", "--allow-insecure-url"]))
    assert remote.api_url == "http://10.1.2.3"
    simulator = make_simulator(seed=110, rate=1.0, history=300)
    by_name = run_collector(f"http://localhost:{simulator.port}", tmp_path / "state", "--once")
    assert by_name.returncode == 0, by_name.stderr


def test_a_key_file_others_can_read_is_refused_unless_allowed(make_simulator, tmp_path):
    simulator = make_simulator(seed=111, rate=1.0, history=300)
    key_file = tmp_path / "key"
    key_file.write_text(TEST_KEY + "\n")
    key_file.chmod(0o644)
    refused = run_collector(simulator.url, tmp_path / "a", "--once", "--key-file", str(key_file), key=None)
    assert refused.returncode == 2
    assert "can be read by other users (mode 0644): chmod 600 it" in one_error(refused.stderr)
    assert simulator.api.requests_seen == 0
    allowed = run_collector(simulator.url, tmp_path / "b", "--once", "--key-file", str(key_file),
                            "--allow-readable-key-file", key=None)
    assert allowed.returncode == 0, allowed.stderr
    assert any("--allow-readable-key-file" in message for message in allowed.log_messages("WARNING"))


def test_a_fifo_as_the_key_file_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "key"
    os.mkfifo(fifo, 0o600)
    run = run_collector("http://127.0.0.1:9", tmp_path / "state", "--once", "--key-file", str(fifo), key=None,
                        timeout=20)
    assert run.returncode == 2
    assert "is a FIFO (named pipe), not a regular file" in one_error(run.stderr)


def test_a_fifo_as_state_json_is_an_error_not_a_hang(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    os.mkfifo(state / "state.json")
    run = run_collector("http://127.0.0.1:9", state, "--once", timeout=20)
    assert run.returncode == 2
    assert "state.json is a FIFO (named pipe), not a regular file" in one_error(run.stderr)
    report = status(state)
    assert report.returncode == 2 and "is a FIFO" in report.stderr and "Traceback" not in report.stderr


def test_status_never_blocks_on_fifos_and_reports_what_it_can(make_simulator, tmp_path):
    simulator = make_simulator(seed=112, rate=1.0, history=300)
    state = tmp_path / "state"
    assert run_collector(simulator.url, state, "--once").returncode == 0
    for name in ("status.json", "backfill.json", "collector.lock"):
        (state / name).unlink(missing_ok=True)
        os.mkfifo(state / name)
    report = status(state)  # subprocess timeout: 30 s
    assert report.returncode == 0, report.stderr
    assert "Collector:        not running" in report.stdout
    assert "Status file:      set aside" in report.stdout and "FIFO" in report.stdout


@pytest.mark.parametrize("args", [
    ["--since", "999999999999d"],
    ["--since", "0001-01-01T00:00:00+01:00"],
    ["--interval", "1e999"],
    ["--overlap", "99999999999d"],
    ["--max-retry-time", "nan"],
    ["--max-rpm", "99999999999999999999"],
    ["--max-line-bytes", "12"],
])
def test_absurd_values_are_one_clear_error(tmp_path, args):
    run = run_collector("http://127.0.0.1:9", tmp_path / "state", "--once", *args)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith(("python -m collector: error:", '{"time"'))


def test_backfill_with_an_absurd_window_is_one_clear_error(tmp_path):
    for args in (["--since", "999999999999d"], ["--since", "1h", "--until", "99999999999999w"]):
        run = subprocess.run([sys.executable, "-m", "collector", "backfill", "--state-dir", str(tmp_path), *args],
                             capture_output=True, text=True, cwd=ROOT, timeout=30,
                             env=collector_env("http://127.0.0.1:9"))
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr


def test_a_lock_file_that_is_a_directory_is_one_clear_error(tmp_path):
    state = tmp_path / "state"
    (state / "collector.lock").mkdir(parents=True)
    run = run_collector("http://127.0.0.1:9", state, "--once")
    assert run.returncode == 2
    assert "collector.lock: it is a directory; remove it" in one_error(run.stderr)


@pytest.mark.parametrize("content", [
    "[1, 2, 3]",
    '"a string"',
    '{"counts": [1, 2]}',
    '{"counts": {"emitted": "many", "pages": [1], "requests": 1e400, "cycles": -4}}',
    '{"last_error": "it broke", "last_cycle": {"lag_seconds": "long"}, "last_success_at": "yesterday"}',
    '{"last_error": {"at": NaN, "message": {"nested": true}}, "last_cycle": 7}',
    '{"counts": {"emitted": 1',
])
def test_a_status_json_of_any_shape_never_stops_status_or_the_collector(make_simulator, tmp_path, content):
    simulator = make_simulator(seed=113, rate=1.0, history=300)
    state = tmp_path / "state"
    state.mkdir()
    (state / "status.json").write_text(content)
    report = status(state)
    assert report.returncode == 0 and "Traceback" not in report.stderr, report.stderr
    assert "Status file:      set aside" in report.stdout and "the collector rewrites it" in report.stdout
    run = run_collector(simulator.url, state, "--once")
    assert run.returncode == 0, run.stderr
    assert run.activities
    health = json.loads((state / "status.json").read_text())  # rewritten in shape
    assert health["counts"]["cycles"] >= 1 and health["counts"]["emitted"] >= len(run.activities)
    after = status(state, "--json")
    assert after.returncode == 0 and json.loads(after.stdout)["status_problem"] is None


def wait_for(predicate, seconds: float = 20) -> None:
    deadline = time.time() + seconds
    while not predicate() and time.time() < deadline:
        time.sleep(0.05)


def test_a_deleted_lock_file_does_not_let_a_second_collector_in(make_simulator, tmp_path):
    simulator = make_simulator(seed=114, rate=1.0, history=300)
    state, log = tmp_path / "state", tmp_path / "first.log"
    first = subprocess.Popen(collector_command("--state-dir", str(state), "--interval", "30"),
                             env=collector_env(simulator.url), stdout=subprocess.DEVNULL, stderr=log.open("wb"),
                             cwd=ROOT)
    try:
        wait_for(lambda: (state / "state.json").exists())
        (state / "collector.lock").unlink()  # a cleanup script, an operator tidying up
        wait_for(lambda: b"re-created and held again" in log.read_bytes(), 10)
        second = run_collector(simulator.url, state, "--once", timeout=30)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=10)
    assert second.returncode == 2
    assert f"in use by another collector (pid {first.pid})" in second.stderr


def test_a_collector_whose_lock_was_taken_by_another_stops(make_simulator, tmp_path):
    simulator = make_simulator(seed=115, rate=1.0, history=300)
    state, log = tmp_path / "state", tmp_path / "first.log"
    first = subprocess.Popen(collector_command("--state-dir", str(state), "--interval", "30"),
                             env=collector_env(simulator.url), stdout=subprocess.DEVNULL, stderr=log.open("wb"),
                             cwd=ROOT)
    try:
        wait_for(lambda: (state / "state.json").exists())
        (state / "collector.lock").unlink()
        # Another collector got in first: it created the lock file anew and holds it.
        fd = os.open(state / "collector.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        assert first.wait(timeout=10) == 2
        os.close(fd)
    finally:
        if first.poll() is None:
            first.kill()
    assert f"another collector (pid {os.getpid()}) now uses this state directory" in one_error(log.read_text())
