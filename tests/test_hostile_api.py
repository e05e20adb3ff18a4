"""An API that misbehaves (ccl/simulator/hostile.py): the feed never stalls, loops, repeats or loses.

Each test sends the collector, as Vector runs it, against one kind of bad answer and checks the
figures an operator cares about: lost, repeated, time taken, memory, what the log says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

from ccl.simulator import FaultPlan
from ccl.simulator.server import stamp
from collector.timeparse import parse_created_at
from tests.conftest import (
    CCL,
    NO_DELAY,
    ROOT,
    TEST_KEY,
    CollectorRun,
    collector_command,
    collector_env,
    history_ids,
    run_collector,
)


def lost_and_repeated(simulator, since_epoch: float, *runs: CollectorRun) -> tuple[int, int]:
    delivered = Counter(activity_id for run in runs for activity_id in run.ids)
    lost = history_ids(simulator, since_epoch) - set(delivered)
    return len(lost), sum(count - 1 for count in delivered.values())


def test_an_empty_first_answer_never_moves_the_start_forward(make_simulator, tmp_path):
    simulator = make_simulator("empty@1", seed=90, rate=2.0, history=3600)
    state = tmp_path / "state"
    since = time.time() - 50 * 60
    glitch = run_collector(simulator.url, state, "--once", "--since", "50m", "--max-rpm", "0")
    assert glitch.returncode == 0, glitch.stderr
    saved = json.loads((state / "state.json").read_text())
    assert parse_created_at(saved["initial"]["since"]) < since + 5  # still where the operator asked
    later = run_collector(simulator.url, state, "--once", "--max-rpm", "0")
    assert later.returncode == 0, later.stderr
    assert lost_and_repeated(simulator, since + 5, glitch, later) == (0, 0)


def backlog_simulator(make_simulator, seed: int):
    """A simulator whose clock runs an hour behind until `catch_up_hour()`, which adds an hour of backlog."""
    shifted = {"by": 3600.0}
    simulator = make_simulator(seed=seed, rate=3.0, history=1800, usual_delay=NO_DELAY,
                               clock=lambda: time.time() - shifted["by"])

    def catch_up_hour() -> None:
        shifted["by"] = 0.0
        simulator.rate = 3.0
        simulator.generate_until(time.time())
        simulator.rate = 0.0

    return simulator, catch_up_hour


def test_catch_up_over_pages_in_the_wrong_order_stops_with_one_error_and_repeats_nothing(make_simulator, tmp_path):
    simulator, catch_up_hour = backlog_simulator(make_simulator, seed=91)
    state = tmp_path / "state"
    first = run_collector(simulator.url, state, "--once", "--since", "90m", "--max-rpm", "0")
    assert first.returncode == 0, first.stderr
    assert len(first.ids) > 1000
    catch_up_hour()  # an hour of activities newer than the cursor: a catch-up of 2 pages and more
    simulator.api.faults = FaultPlan.parse("ascending")
    hostile = run_collector(simulator.url, state, "--once", "--max-rpm", "0", timeout=60)
    assert hostile.returncode == 1
    errors = hostile.log_messages("ERROR")
    assert len(errors) == 1 and "not in newest-first order" in errors[0]
    assert hostile.stdout == b"" and hostile.seconds < 30
    simulator.api.faults = FaultPlan()
    healed = run_collector(simulator.url, state, "--once", "--max-rpm", "0")
    assert healed.returncode == 0
    assert lost_and_repeated(simulator, time.time() - 90 * 60 + 5, first, hostile, healed) == (0, 0)


def test_catch_up_whose_cursor_never_moves_stops_with_one_error(make_simulator, tmp_path):
    simulator, catch_up_hour = backlog_simulator(make_simulator, seed=92)
    state = tmp_path / "state"
    first = run_collector(simulator.url, state, "--once", "--since", "90m", "--max-rpm", "0")
    assert first.returncode == 0 and len(first.ids) > 1000
    catch_up_hour()
    simulator.api.faults = FaultPlan.parse("stuck")
    requests_before = simulator.api.requests_seen
    hostile = run_collector(simulator.url, state, "--once", "--max-rpm", "0", timeout=60)
    assert hostile.returncode == 1
    errors = hostile.log_messages("ERROR")
    assert len(errors) == 1 and "same cursor as the request" in errors[0]
    assert hostile.seconds < 30 and simulator.api.requests_seen - requests_before < 5
    assert hostile.stdout == b""


def test_duplicates_inside_a_page_are_emitted_once(make_simulator, tmp_path):
    simulator = make_simulator("duplicate", seed=93, rate=3.0, history=3600, usual_delay=NO_DELAY)
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--since", "50m", "--max-rpm", "0")
    assert run.returncode == 0, run.stderr
    assert lost_and_repeated(simulator, time.time() - 50 * 60 + 5, run) == (0, 0)
    assert "the API returned the same activity more than once in one page; each is emitted once" in \
        run.log_messages("WARNING")


def test_a_byte_that_is_not_utf8_never_stalls_the_feed(make_simulator, tmp_path):
    simulator = make_simulator("bad-utf8", seed=94, rate=2.0, history=3600, usual_delay=NO_DELAY)  # every page has one
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--since", "50m", "--max-rpm", "0")
    assert run.returncode == 0, run.stderr
    assert lost_and_repeated(simulator, time.time() - 50 * 60 + 5, run) == (0, 0)
    named = {entry["activity_id"] for entry in run.logs if entry.get("replaced", "").startswith("invalid UTF-8")}
    damaged = {activity["id"] for activity in run.activities
               if activity["actor"].get("user_agent", "").startswith("\ufffd")}
    assert damaged and damaged <= named  # each activity that went out altered is named in the log
    run.stdout.decode("utf-8")  # what reaches Vector is UTF-8


def test_nan_in_an_activity_becomes_null_so_a_strict_reader_keeps_the_line(make_simulator, tmp_path):
    simulator = make_simulator("nan@1", seed=95, rate=1.0, history=600)
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--max-rpm", "0")
    assert run.returncode == 0, run.stderr

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    lines = [json.loads(line, parse_constant=refuse) for line in run.stdout.splitlines()]  # strict, as Vector
    flagged = [entry for entry in run.logs if entry.get("replaced", "").startswith("NaN")]
    assert len(flagged) == 1
    assert next(line for line in lines if line["id"] == flagged[0]["activity_id"])["risk_score"] is None


def test_an_error_that_echoes_the_key_leaks_it_nowhere(make_simulator, tmp_path):
    simulator = make_simulator("echo-key", seed=96, history=60)
    state = tmp_path / "state"
    run = run_collector(simulator.url, state, "--once")
    assert run.returncode == 3
    assert "API key [REDACTED] is invalid" in run.stderr
    status_file = (state / "status.json").read_text()
    assert "[REDACTED]" in status_file
    words = subprocess.run([*CCL, "status", "--state-dir", str(state)], capture_output=True,
                           text=True, cwd=ROOT, timeout=60, env=collector_env(simulator.url))
    as_json = subprocess.run([sys.executable, "-m", "collector", "status", "--json", "--state-dir", str(state)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "[REDACTED]" in words.stdout
    for where, text in [("stderr", run.stderr), ("status.json", status_file), ("status", words.stdout),
                        ("status --json", as_json.stdout), ("state dir", repr(sorted(os.listdir(state))))]:
        assert TEST_KEY not in text and TEST_KEY[-16:] not in text, f"the key leaked into {where}"


def test_a_server_that_drips_bytes_is_cut_off_at_the_request_timeout(make_simulator, tmp_path):
    simulator = make_simulator("drip", seed=97, history=60)
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--request-timeout", "2",
                        "--max-retry-time", "5s", timeout=60)
    assert run.returncode == 1
    assert run.seconds < 15  # three or four attempts of 2 s, backoff included
    retries = [entry for entry in run.logs if entry["message"] == "request failed, will retry"]
    assert retries and all("no complete answer within 2s" in entry["error"] for entry in retries)


# Started from a small Python rather than from pytest: a child's peak RSS counts the pages of the
# process it was forked from, and pytest is hundreds of MB by the end of the suite.
MEASURE = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
           "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
           "sys.exit(code)")


def peak_rss_mb(command: list[str], env: dict[str, str], stdout_path) -> tuple[int, float, bytes]:
    """Exit code, peak resident memory (MB) and stderr of `command`."""
    peak_file = stdout_path.with_suffix(".peak")
    with stdout_path.open("wb") as stdout:
        done = subprocess.run([sys.executable, "-c", MEASURE, str(peak_file), *command], env=env, stdout=stdout,
                              stderr=subprocess.PIPE, cwd=ROOT, timeout=120)
    return done.returncode, int(peak_file.read_text()) / 1024, done.stderr


def test_a_huge_page_is_asked_again_in_smaller_pages_and_memory_stays_bounded(make_simulator, tmp_path):
    simulator = make_simulator("huge@1", seed=98, rate=3.0, history=3600, usual_delay=NO_DELAY)
    state, out = tmp_path / "state", tmp_path / "out.ndjson"
    since = time.time() - 50 * 60
    code, peak, stderr = peak_rss_mb(collector_command("--state-dir", str(state), "--once", "--since", stamp(since),
                                                       "--max-rpm", "0"), collector_env(simulator.url), out)
    assert code == 0, stderr
    assert peak < 400, f"{peak:.0f} MB for a 300 MB answer"
    assert b"asking for smaller pages" in stderr
    run = CollectorRun(code, out.read_bytes(), stderr.decode(), 0.0)
    assert lost_and_repeated(simulator, since + 5, run) == (0, 0)


def test_an_answer_too_large_even_for_one_activity_is_one_clear_error(make_simulator, tmp_path):
    simulator = make_simulator("huge", seed=99, rate=1.0, history=600)
    code, peak, stderr = peak_rss_mb(collector_command("--state-dir", str(tmp_path / "s"), "--once", "--max-rpm",
                                                       "0"), collector_env(simulator.url), tmp_path / "out")
    assert code == 1
    errors = [json.loads(line) for line in stderr.splitlines() if b'"ERROR"' in line]
    assert len(errors) == 1 and "even for a single activity" in errors[0]["message"]
    assert peak < 400, f"{peak:.0f} MB"


def test_an_activity_line_longer_than_max_line_bytes_is_emitted_and_named_in_an_error(make_simulator, tmp_path):
    simulator = make_simulator(seed=100, rate=2.0, history=1800, usual_delay=NO_DELAY)
    now = time.time()
    # Uploads of files with very long names (the catalogue's `filename` of claude_file_uploaded).
    long_ids = {simulator.add(simulator.factory.make("claude_file_uploaded", stamp(now - 600 + minute),
                                                     filename="report-" + "x" * (2000 + minute)), delay=0)["id"]
                for minute in range(3)}
    run = run_collector(simulator.url, tmp_path / "state", "--once", "--max-line-bytes", "2048", "--max-rpm", "0")
    assert run.returncode == 0, run.stderr
    assert long_ids == {json.loads(line)["id"] for line in run.stdout.splitlines() if len(line) > 2048}
    named = [entry for entry in run.logs
             if entry["level"] == "ERROR" and "longer than --max-line-bytes" in entry["message"]]
    assert {entry["activity_id"] for entry in named} == long_ids and len(named) == 3
    assert all(entry["max_line_bytes"] == 2048 and entry["line_bytes"] > 2048 for entry in named)
    assert lost_and_repeated(simulator, now - 3600 + 5, run) == (0, 0)
