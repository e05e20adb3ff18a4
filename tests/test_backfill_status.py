"""`backfill` (resumable walk of older activities) and `status` (the state in words)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

from ccl.simulator.server import stamp
from collector.timeparse import parse_created_at
from tests.conftest import CCL, ROOT, collector_env


def backfill(url, state, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "collector", "backfill", "--log-format", "json",
                           "--state-dir", str(state), "--max-rpm", "0", *args],
                          env=collector_env(url), capture_output=True, cwd=ROOT, timeout=timeout)


def test_backfill_reads_exactly_the_window_and_resumes_after_interruption(make_simulator, tmp_path):
    simulator = make_simulator("503@3", seed=70, rate=3.0, history=6 * 3600)  # 65k rows
    since, until = stamp(time.time() - 5 * 3600), stamp(time.time() - 3600)
    state = tmp_path / "state"
    # The first attempt dies on the third request (--max-retry-time 0.5s gives up at once)...
    first = backfill(simulator.url, state, "--since", since, "--until", until, "--max-retry-time", "0.5s")
    assert first.returncode == 1
    record = json.loads((state / "backfill.json").read_text())
    assert record["done"] is False and record["emitted"] == 10_000
    # ...and the same command resumes where it stopped.
    second = backfill(simulator.url, state, "--since", since, "--until", until)
    assert second.returncode == 0, second.stderr

    ids = [json.loads(line)["id"] for line in (first.stdout + second.stdout).splitlines()]
    expected = {a["id"] for a in simulator.store.all_activities() if since <= a["created_at"] < until}
    assert Counter(ids).most_common(1)[0][1] == 1
    assert set(ids) == expected

    again = backfill(simulator.url, state, "--since", since, "--until", until)
    assert again.returncode == 0 and again.stdout == b""
    assert "already complete" in again.stderr.decode()


def test_a_different_backfill_over_an_unfinished_one_is_refused(make_simulator, tmp_path):
    simulator = make_simulator("503", seed=71, rate=1.0, history=3600)
    state = tmp_path / "state"
    assert backfill(simulator.url, state, "--since", "50m", "--max-retry-time", "0.5s").returncode == 1
    assert json.loads((state / "backfill.json").read_text())["since_arg"] == "50m"
    other = backfill(simulator.url, state, "--since", "20m")
    assert other.returncode == 2
    assert "holds another backfill" in other.stderr.decode() and "--restart" in other.stderr.decode()


def test_status_describes_the_state_in_words_and_json(make_simulator, tmp_path):
    simulator = make_simulator(seed=72, rate=2.0, history=1800)
    state = tmp_path / "state"
    subprocess.run([sys.executable, "-m", "collector", "--once", "--state-dir", str(state)],
                   env=collector_env(simulator.url), capture_output=True, cwd=ROOT, timeout=60, check=True)
    words = subprocess.run([*CCL, "status", "--state-dir", str(state)], capture_output=True, text=True,
                           cwd=ROOT, timeout=60, env=collector_env(simulator.url))
    assert words.returncode == 0, words.stderr
    assert "Collector:        not running" in words.stdout
    assert "Last error:       none" in words.stdout
    assert "activities emitted" in words.stdout and "Newest activity:" in words.stdout

    report = json.loads(subprocess.run([*CCL, "status", "--json", "--state-dir", str(state)], capture_output=True,
                                       text=True, cwd=ROOT, timeout=60).stdout)
    newest = max(a["created_at"] for a in simulator.store.visible_activities(time.time())
                 if a["type"] != "compliance_api_accessed")
    assert report["counts"]["emitted"] >= 3000
    assert report["newest_activity_at"] >= newest
    assert report["cursor_age_seconds"] < 60
    assert parse_created_at(report["newest_activity_at"]) is not None


def test_status_reports_the_last_error(make_simulator, tmp_path):
    simulator = make_simulator("not-enabled", seed=73, history=60)
    state = tmp_path / "state"
    subprocess.run([sys.executable, "-m", "collector", "--once", "--state-dir", str(state)],
                   env=collector_env(simulator.url), capture_output=True, cwd=ROOT, timeout=60)
    words = subprocess.run([*CCL, "status", "--state-dir", str(state)], capture_output=True, text=True,
                           cwd=ROOT, timeout=60)
    assert "[not_enabled]" in words.stdout and "not enabled for this organization" in words.stdout


def test_status_of_a_missing_directory_is_an_error(tmp_path):
    missing = subprocess.run([*CCL, "status", "--state-dir", str(tmp_path / "nope")], capture_output=True,
                             text=True, cwd=ROOT, timeout=60)
    assert missing.returncode == 2
    assert "no state directory" in missing.stderr
