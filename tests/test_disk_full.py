"""A full disk under the state dir: nothing emitted that cannot be recorded, so nothing repeats.

The collector writes the state that follows a page (temp file, fsync) before it writes the page,
so when the disk is full it stops before the page: `--once` exits 1, follow mode waits for space
and logs once a minute, and no restart ever sends the same page again. The full disk is injected
into the collector process by tests/fullfs/sitecustomize.py (fsync fails with ENOSPC while a
flag file exists).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter

from tests.conftest import NO_DELAY, ROOT, collector_command, collector_env, history_ids, run_collector

FULLFS = str(ROOT / "tests" / "fullfs")


def test_once_on_a_full_disk_exits_1_before_emitting_and_the_next_run_repeats_nothing(make_simulator, tmp_path):
    simulator = make_simulator(seed=80, rate=3.0, history=3600, usual_delay=NO_DELAY)  # failed once without
    flag = tmp_path / "disk-is-full"
    flag.touch()
    state = tmp_path / "state"
    full = run_collector(simulator.url, state, "--once", "--since", "50m", "--max-rpm", "0",
                         PYTHONPATH=FULLFS, CCL_TEST_DISK_FULL=str(flag))
    assert full.returncode == 1, full.stderr
    assert full.stdout == b""  # nothing emitted that the state could not record
    errors = full.log_messages("ERROR")
    assert len(errors) == 1 and "No space left on device" in errors[0] and "free space and run again" in errors[0]

    flag.unlink()
    freed = run_collector(simulator.url, state, "--once", "--since", "50m", "--max-rpm", "0",
                          PYTHONPATH=FULLFS, CCL_TEST_DISK_FULL=str(flag))
    assert freed.returncode == 0, freed.stderr
    assert max(Counter(freed.ids).values()) == 1
    assert history_ids(simulator, time.time() - 50 * 60 + 5) <= set(freed.ids)


def test_follow_mode_waits_for_space_logging_once_a_minute_then_delivers_everything_once(make_simulator, tmp_path):
    simulator = make_simulator(seed=81, rate=3.0, history=3600)
    flag = tmp_path / "disk-is-full"
    state, out, log = tmp_path / "state", tmp_path / "out.ndjson", tmp_path / "collector.log"
    follower = subprocess.Popen(
        collector_command("--state-dir", str(state), "--since", "50m", "--max-rpm", "0", "--interval", "0.5"),
        env=collector_env(simulator.url, PYTHONPATH=FULLFS, CCL_TEST_DISK_FULL=str(flag)),
        stdout=out.open("wb"), stderr=log.open("wb"), cwd=ROOT)
    try:
        deadline = time.time() + 20
        while not (state / "state.json").exists() and time.time() < deadline:  # running and saving
            time.sleep(0.05)
        flag.touch()  # the disk fills up
        delivered_before = out.read_bytes().count(b"\n")
        time.sleep(6)
        assert follower.poll() is None, "a full disk must not end follow mode (Vector would respawn it in a loop)"
        waiting = [entry for entry in map(json.loads, log.read_text().splitlines()) if entry["level"] == "ERROR"]
        assert len(waiting) <= 1  # once a minute, not once a poll
        flag.unlink()  # space is freed: within a retry (5 s) the feed goes on
        deadline = time.time() + 20
        while b"the state can be saved again" not in log.read_bytes() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1)
    finally:
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=10) == 0
    logs = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("waiting for space" in entry["message"] for entry in logs)
    assert any(entry["message"] == "the state can be saved again; continuing" for entry in logs)
    emitted = [json.loads(line)["id"] for line in out.read_bytes().splitlines()]
    assert len(emitted) >= delivered_before
    again = run_collector(simulator.url, state, "--once", "--max-rpm", "0")
    assert again.returncode == 0, again.stderr
    delivered = Counter(emitted + again.ids)
    assert max(delivered.values()) == 1
    assert history_ids(simulator, time.time() - 50 * 60 + 5) <= set(delivered)
