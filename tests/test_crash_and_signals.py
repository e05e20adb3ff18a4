"""Process-level guarantees: kill -9 at any moment loses nothing; SIGTERM repeats nothing."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from ccl.simulator.server import stamp
from collector.timeparse import parse_created_at
from tests.conftest import ROOT, collector_command, collector_env, history_ids, run_collector

PAGE = 5000


def read_delivered(path: Path) -> list[str]:
    """Ids a reader (Vector) would have decoded: a line cut by the kill is not a delivery."""
    ids = []
    for line in path.read_bytes().split(b"\n"):
        if not line:
            continue
        try:
            ids.append(json.loads(line)["id"])
        except ValueError:
            continue
    return ids


def start_follower(url: str, state: Path, out: Path, *extra: str) -> subprocess.Popen:
    """A follower that has started (its first log line is out), so a signal finds its handlers in place."""
    log = out.with_suffix(".log")
    process = subprocess.Popen(
        collector_command("--state-dir", str(state), "--max-rpm", "0", "--interval", "0.2",
                          "--reconcile-every", "1s", *extra),
        env=collector_env(url), stdout=out.open("wb"), stderr=log.open("wb"), cwd=ROOT)
    deadline = time.monotonic() + 30  # a loaded machine can take seconds to start Python
    while time.monotonic() < deadline and process.poll() is None and not log.read_bytes():
        time.sleep(0.02)
    return process


def test_kill_9_at_random_moments_loses_nothing_and_repeats_at_most_a_page_per_kill(make_simulator, tmp_path):
    # ~86,000 rows of history (18 pages) plus live traffic visible at once, so that a cursor never
    # skips a row and every row created before the final run must come out.
    simulator = make_simulator(seed=30, rate=4.0, history=6 * 3600, live_rate=30.0, usual_delay=(0.0, 0.0))
    since = stamp(time.time() - 5 * 3600)
    state = tmp_path / "state"
    chooser = random.Random(30)
    outputs: list[Path] = []
    for attempt in range(8):
        out = tmp_path / f"run{attempt}.ndjson"
        outputs.append(out)
        process = start_follower(simulator.url, state, out, "--since", since)
        time.sleep(chooser.uniform(0.15, 1.2))
        process.kill()
        process.wait()
    final_started = time.time()
    final = tmp_path / "final.ndjson"
    outputs.append(final)
    # The same command line as the followers (as Vector runs it), in case no follower got to save a state.
    completed = subprocess.run(collector_command("--state-dir", str(state), "--once", "--max-rpm", "0",
                                                 "--since", since),
                               env=collector_env(simulator.url), stdout=final.open("wb"),
                               stderr=subprocess.PIPE, cwd=ROOT, timeout=120)
    assert completed.returncode == 0, completed.stderr.decode()

    runs = [read_delivered(path) for path in outputs]
    delivered = Counter(activity_id for run in runs for activity_id in run)
    expected = {a["id"] for a in simulator.store.all_activities()
                if since <= a["created_at"] < stamp(final_started)}
    assert len(expected) > 70_000  # the history since `since`, plus live traffic and the API's own records
    missing = expected - set(delivered)
    assert not missing, f"{len(missing)} activities lost across kill -9"
    # What a restart repeats is the page it had written but not yet recorded as written.
    for before, after in itertools.pairwise(runs):
        assert len(set(before) & set(after)) <= PAGE
    assert sum(count - 1 for count in delivered.values()) <= PAGE * 8


def test_sigterm_mid_run_saves_and_exits_0_quickly_and_nothing_repeats(make_simulator, tmp_path):
    simulator = make_simulator(seed=31, rate=4.0, history=6 * 3600)
    state = tmp_path / "state"
    first_out = tmp_path / "first.ndjson"
    process = start_follower(simulator.url, state, first_out, "--since", "5h")
    time.sleep(0.6)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - signalled < 5
    second = run_collector(simulator.url, state, "--once", "--max-rpm", "0")
    assert second.returncode == 0

    first_ids = read_delivered(first_out)
    assert len(first_ids) > 0
    assert set(first_ids).isdisjoint(second.ids)
    assert max(Counter(first_ids + second.ids).values()) == 1
    assert history_ids(simulator, time.time() - 5 * 3600 + 60) <= set(first_ids) | set(second.ids)


def test_sigterm_while_a_request_hangs_exits_within_5_seconds(make_simulator, tmp_path):
    simulator = make_simulator("timeout@2", seed=32, rate=1.0, history=600)
    simulator.timeout_delay = 30
    process = subprocess.Popen(collector_command("--state-dir", str(tmp_path / "s"), "--interval", "0.1"),
                               env=collector_env(simulator.url), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.time() + 10
    while simulator.api.requests_seen < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the second request is now hanging
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - signalled < 5
    stderr = process.stderr.read().decode()
    assert "stopped by signal; state is saved" in stderr


def test_sigterm_while_sleeping_between_polls(make_simulator, tmp_path):
    simulator = make_simulator(seed=33, rate=1.0, history=600)
    process = subprocess.Popen(collector_command("--state-dir", str(tmp_path / "s"), "--interval", "60"),
                               env=collector_env(simulator.url), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, cwd=ROOT)
    status = tmp_path / "s" / "status.json"  # written once the first cycle is done
    deadline = time.time() + 10
    while not status.exists() and time.time() < deadline:
        time.sleep(0.05)
    signalled = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - signalled < 2


def test_sigterm_while_a_slow_reader_holds_the_write_cuts_no_page(make_simulator, tmp_path):
    # Vector under back-pressure reads, but slower than the collector writes: the collector sits in
    # write() with most of a 3 MB page still to go when SIGTERM arrives.
    simulator = make_simulator(seed=34, rate=4.0, history=3 * 3600)
    since = stamp(time.time() - 2.5 * 3600)
    state = tmp_path / "state"
    log = tmp_path / "collector.log"
    process = subprocess.Popen(collector_command("--state-dir", str(state), "--max-rpm", "0", "--since", since),
                               env=collector_env(simulator.url), stdout=subprocess.PIPE, stderr=log.open("wb"),
                               cwd=ROOT)
    received = bytearray()
    signalled = False
    while chunk := os.read(process.stdout.fileno(), 16384):
        received += chunk
        if len(received) > 1_000_000 and not signalled:
            process.send_signal(signal.SIGTERM)
            signalled = True
        time.sleep(0.003)  # about 5 MB/s: slower than the collector writes
    assert process.wait(timeout=30) == 0, log.read_text()
    assert signalled and received.endswith(b"\n")  # no half-written line
    first = [json.loads(line)["id"] for line in bytes(received).splitlines()]  # every line is whole JSON
    assert len(first) % PAGE == 0  # whole pages only

    second = run_collector(simulator.url, state, "--once", "--max-rpm", "0")
    assert second.returncode == 0, second.stderr
    delivered = Counter(first + second.ids)
    lost = history_ids(simulator, parse_created_at(since)) - set(delivered)
    assert (len(lost), sum(count - 1 for count in delivered.values())) == (0, 0)
