"""`ccl detect` streaming: the same signals as the whole-input path, in bounded memory, from any input."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import pty
import random
import re
import subprocess
from pathlib import Path

import orjson
import pytest
import zstandard

from ccl.content.assets import load_all
from ccl.detection.engine import Engine
from ccl.detection.rule_tests import build_events, rule_under_test
from ccl.detection.rules import build_rule
from ccl.detection.stream.detect import IN_ORDER_WINDOW, StreamSettings, detect_stream
from ccl.detection.stream.event_files import find_sources
from ccl.simulator.scenarios import SCENARIOS
from ccl.simulator.server import Simulator
from ccl.vector.normalize import Normalizer
from tests.conftest import CCL, ROOT


def rules_of_the_repository():
    assets, _ = load_all([ROOT / "detections"], ROOT)
    return [build_rule(asset) for asset in assets if asset.kind == "rule"]


def write_ndjson(path: Path, events: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    return path


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def stream(paths: list[Path], rules, **settings) -> list[dict]:
    signals: list[dict] = []
    problems: list[str] = []
    detect_stream(find_sources([str(path) for path in paths]), rules, StreamSettings(**settings),
                  signals.append, problems.append)
    assert problems == []
    return signals


class RawActivities:
    """Stands in for the Normalizer in build_events: the test's activities as the API sends them."""

    def normalize(self, activity: dict) -> dict:
        return activity


def test_every_rule_test_gives_the_same_signals_streamed_as_whole(tmp_path):
    """Each test's events in time order (detected while reading) and shuffled (sorted with a buffer of
    3, so that every test spills and merges), the engine told to forget after every event: neither
    forgetting nor sorting out of core changes a signal. The raw activities, normalized on the way
    (user agents remembered, OCSF left out where no rule that can match reads it), give them too."""
    normalizer = Normalizer()
    compared = fired = raw_compared = 0
    for rule in rules_of_the_repository():
        for number, test in enumerate(rule.tests):
            events = build_events(rule.id, test, normalizer)
            if not any(spec.get("add") for spec in test["events"]):  # `add` is merged into normalized events
                whole = [signal.to_json() for signal in Engine([rule_under_test(rule, test)]).run(events)]
                raw = write_ndjson(tmp_path / f"{rule.id}-{number}-raw.ndjson",
                                   build_events(rule.id, test, RawActivities()))  # type: ignore[arg-type]
                streamed = stream([raw], [rule_under_test(rule, test)], jobs=0, forget_every=1)
                assert streamed == whole, f"{rule.id}: {test['name']} (raw)"
                raw_compared += 1
            for order in ("in order", "shuffled"):
                if order == "shuffled":
                    random.Random(number).shuffle(events)  # the same order for both paths: ties keep input order
                whole = [signal.to_json() for signal in Engine([rule_under_test(rule, test)]).run(events)]
                path = write_ndjson(tmp_path / f"{rule.id}-{number}.ndjson", events)
                streamed = stream([path], [rule_under_test(rule, test)], jobs=0, sort_buffer=3, forget_every=1)
                assert streamed == whole, f"{rule.id}: {test['name']} ({order})"
            compared += 1
            fired += bool(whole)
    assert compared >= 70 and fired >= 35  # every rule has a test that fires and one that does not
    assert raw_compared >= compared * 0.8


def simulator_history(path: Path, hours: float = 2, seed: int = 7, page: int | None = None) -> Path:
    """The simulator's history with every attack story, newest first (as a backfill writes it) or, with
    `page`, as a collector catching up writes it: pages newest first inside, oldest page first."""
    simulator = Simulator(seed=seed, rate=0.3, history=hours * 3600, scenarios=list(SCENARIOS), record_requests=False)
    activities = sorted(simulator.store.all_activities(), key=lambda a: (a["created_at"], a["id"]), reverse=True)
    if page:
        oldest_first = activities[::-1]
        activities = [item for start in range(0, len(oldest_first), page)
                      for item in reversed(oldest_first[start:start + page])]
    return write_ndjson(path, activities)


def detect(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([*CCL, "detect", *args], cwd=ROOT, capture_output=True, check=False, input=stdin)
    assert done.returncode == 0, done.stderr.decode()
    return done


def test_the_simulators_stories_give_the_same_signals_streamed_as_whole(tmp_path, geoip_db):
    geoip = ("--geoip-db", str(geoip_db))
    raw = simulator_history(tmp_path / "raw.ndjson")
    whole = detect("--whole-input", "--events", str(raw), *geoip)
    fired = {json.loads(line)["rule"] for line in whole.stdout.splitlines()}
    # impossible-travel-sign-in learns each person's places for a week first (baseline_duration),
    # longer than this history: bench/bench_alerts.py proves it on a month.
    assert {"sso-brute-force-then-success", "compliance-logging-disabled", "bulk-chat-access"} <= fired
    backfill = detect("--events", str(raw), "--sort-buffer", "500", "--jobs", "2", *geoip)
    assert backfill.stdout == whole.stdout
    assert "already in time order (newest first)" in backfill.stderr.decode()
    assert " 0 no rule can match" not in backfill.stderr.decode()  # raw lines skipped by type

    pages = simulator_history(tmp_path / "pages.ndjson", page=200)  # ties in time now come in another order
    catch_up = detect("--events", str(pages), "--sort-buffer", "500", "--jobs", "2", *geoip)
    assert catch_up.stdout == detect("--whole-input", "--events", str(pages), *geoip).stdout
    assert "in time order within 500 events: detected while reading" in catch_up.stderr.decode()
    by_default = detect("--events", str(pages), "--jobs", "2", *geoip)
    assert by_default.stdout == catch_up.stdout
    assert f"in time order within {IN_ORDER_WINDOW:,} events: detected while reading" in by_default.stderr.decode()
    # Pages of 200 (about 110 events a rule can match) in a window of 50: out of order beyond the
    # window within the first buffer, so sorted on disk from the copy made on the side meanwhile, for
    # a file as for stdin (test_a_file_read_twice... covers an order that breaks later).
    for beyond in (detect("--events", str(pages), "--sort-buffer", "50", "--jobs", "2", *geoip),
                   detect("--events", "-", "--sort-buffer", "50", "--jobs", "2", *geoip, stdin=pages.read_bytes())):
        assert beyond.stdout == catch_up.stdout
        assert "runs on disk" in beyond.stderr.decode() and "read twice" not in beyond.stderr.decode()

    normalized = tmp_path / "normalized.ndjson"
    normalized.write_bytes(subprocess.run([*CCL, "normalize", str(raw), *geoip], cwd=ROOT, capture_output=True,
                                          check=True).stdout)
    assert detect("--events", str(normalized), "--jobs", "1").stdout == whole.stdout


def test_compressed_files_and_a_directory_read_as_one_input(tmp_path, geoip_db):
    raw = simulator_history(tmp_path / "raw.ndjson", hours=1, seed=8)
    expected = detect("--whole-input", "--events", str(raw), "--geoip-db", str(geoip_db)).stdout
    lines = raw.read_bytes().splitlines(keepends=True)
    archive = tmp_path / "archive"
    (archive / "2026").mkdir(parents=True)
    third = len(lines) // 3
    (archive / "activities-1.ndjson.gz").write_bytes(gzip.compress(b"".join(lines[:third])))
    (archive / "2026" / "activities-2.ndjson").write_bytes(b"".join(lines[third:2 * third]))
    (archive / "activities-3.zst").write_bytes(zstandard.ZstdCompressor().compress(b"".join(lines[2 * third:])))
    (archive / ".partial-4.ndjson").write_bytes(b"not even json\n")  # hidden: a file Vector is still writing
    assert detect("--events", str(archive), "--geoip-db", str(geoip_db)).stdout == expected
    first, rest = tmp_path / "first.ndjson.gz", tmp_path / "rest.ndjson"
    first.write_bytes(gzip.compress(b"".join(lines[:third])))
    rest.write_bytes(b"".join(lines[third:]))
    assert detect("--events", str(first), "--events", str(rest), "--geoip-db", str(geoip_db)).stdout == expected
    piped = gzip.compress(raw.read_bytes())
    assert detect("--events", "-", "--geoip-db", str(geoip_db), stdin=piped).stdout == expected


def test_a_file_read_twice_reports_its_bad_lines_once(tmp_path):
    """In order for many sort buffers, then not: the file is read again to sort (nothing was sorted on the
    side past the first buffers), and the second reading must not repeat the bad lines the first reported."""
    raw = simulator_history(tmp_path / "raw.ndjson", hours=4, seed=9)  # several blocks of lines
    oldest_first = raw.read_bytes().splitlines(keepends=True)[::-1]
    half = len(oldest_first) // 2
    lines = [oldest_first[0], b"{not json\n", oldest_first[1], b"[1, 2]\n", *oldest_first[2:half],
             *oldest_first[half:][::-1]]  # halfway, newest first
    mixed = tmp_path / "mixed.ndjson"
    mixed.write_bytes(b"".join(lines))
    done = subprocess.run([*CCL, "detect", "--events", str(mixed), "--sort-buffer", "20", "--jobs", "2"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("mixed.ndjson:2: not JSON") == 1
    assert done.stderr.count("mixed.ndjson:4: a JSON list, not an activity object") == 1
    assert "read twice" in done.stderr and "Traceback" not in done.stderr
    clean = tmp_path / "clean.ndjson"
    clean.write_bytes(b"".join(line for line in lines if line.startswith(b"{\"")))
    assert done.stdout.encode() == detect("--whole-input", "--events", str(clean)).stdout
    assert f"{len(lines) - 2:,} events" in done.stderr


@pytest.mark.parametrize("order", ["newest first", "oldest first"])
def test_bad_lines_are_named_by_their_line_in_their_file_however_the_files_are_read(tmp_path, monkeypatch, order):
    """Plain files are read by the processes in byte ranges (here of 2,000 bytes, many lines and parts
    of lines each), backwards when newest first; a gzip file is read by the reading process. Each bad
    line is named once, by its file and its line counted from 1 as an editor shows it."""
    import ccl.detection.stream.detect as streaming

    monkeypatch.setattr(streaming, "BLOCK_BYTES", 2000)
    raw = simulator_history(tmp_path / "raw.ndjson", hours=1, seed=4).read_bytes().splitlines(keepends=True)
    if order == "oldest first":
        raw.reverse()
    third = len(raw) // 3
    parts = [raw[:third], raw[third:2 * third], raw[2 * third:]]
    bad = {0: {2: b"{not json\n", 40: b"[1]\n"}, 1: {1: b"\n", 7: b"{\"a\": \n"}, 2: {300: b"17\n"}}
    names = ["a.ndjson", "b.ndjson", "c.ndjson.gz" if order == "oldest first" else "c.ndjson"]
    paths, clean, expected = [], [], []
    for number, (name, lines) in enumerate(zip(names, parts, strict=True)):
        for line_number in sorted(bad[number]):  # an editor's line numbers, from 1
            lines.insert(line_number - 1, bad[number][line_number])
            if bad[number][line_number].strip():
                expected.append(f"{name}:{line_number}:")
        content = b"".join(lines)
        paths.append(tmp_path / name)
        paths[-1].write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
        clean.extend(line for line in lines if line not in bad[number].values())
    rules = rules_of_the_repository()
    signals: list[dict] = []
    problems: list[str] = []
    report = detect_stream(find_sources([str(path) for path in paths]), rules, StreamSettings(jobs=2),
                           signals.append, problems.append)
    assert sorted(problem.split(" ")[0].rsplit("/", 1)[-1] for problem in problems) == sorted(expected)
    assert report.in_order == order
    whole = detect("--whole-input", "--events", str(write_lines(tmp_path / "clean.ndjson", clean)))
    assert signals == [json.loads(line) for line in whole.stdout.splitlines()] and signals


def test_input_out_of_order_beyond_the_window_but_within_the_sort_buffer_is_sorted_from_the_side_copy(
        tmp_path, monkeypatch):
    """The engine runs at most IN_ORDER_WINDOW events behind the reading (here 30); pages of 200 are
    further out of order than that, which shows within the first sort buffer (500): sorted from the
    copy made on the side, without reading the file again."""
    import ccl.detection.stream.detect as streaming

    monkeypatch.setattr(streaming, "IN_ORDER_WINDOW", 30)
    pages = simulator_history(tmp_path / "pages.ndjson", hours=1, seed=5, page=200)
    signals: list[dict] = []
    report = detect_stream(find_sources([str(pages)]), rules_of_the_repository(),
                           StreamSettings(jobs=2, sort_buffer=500), signals.append, print)
    assert report.in_order == "" and report.read_again_after == 0 and report.window == 30
    whole = detect("--whole-input", "--events", str(pages))
    assert signals == [json.loads(line) for line in whole.stdout.splitlines()] and signals


def test_by_default_a_process_per_cpu_prepares_raw_and_normalized_input_alike(tmp_path):
    from ccl.detection.stream.detect import usable_cpus

    raw = simulator_history(tmp_path / "raw.ndjson", hours=0.5, seed=3)
    normalized = tmp_path / "normalized.ndjson"
    normalizer = Normalizer()
    write_ndjson(normalized, [normalizer.normalize(orjson.loads(line)) for line in raw.read_bytes().splitlines()])
    rules = rules_of_the_repository()
    found = {}
    for path, jobs in ((raw, None), (normalized, None), (normalized, 0)):
        signals: list[dict] = []
        report = detect_stream(find_sources([str(path)]), rules, StreamSettings(jobs=jobs), signals.append, print)
        found[path.stem, jobs] = (report.jobs, signals)
    assert found["raw", None][0] == found["normalized", None][0] == usable_cpus() and found["normalized", 0][0] == 0
    assert found["raw", None][1] == found["normalized", None][1] == found["normalized", 0][1]


def test_help_says_how_far_out_of_order_input_is_still_read_in_order():
    shown = subprocess.run([*CCL, "detect", "--help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert f"out of order by at most {IN_ORDER_WINDOW:,} events" in " ".join(shown.split())


def test_empty_inputs_give_no_signal_and_say_so(tmp_path):
    empty, blank = tmp_path / "empty.ndjson", tmp_path / "blank.ndjson.gz"
    empty.write_bytes(b"")
    blank.write_bytes(gzip.compress(b"\n\n"))
    for arguments, stdin in ((["--events", str(empty)], None), (["--events", str(blank)], None),
                             (["--events", str(empty), "--events", str(blank)], None), (["--events", "-"], b"")):
        done = detect(*arguments, stdin=stdin)
        assert done.stdout == b"" and re.fullmatch(r"0 events \(0 no rule can match\), \d+ rules, 0 signals\n",
                                                 done.stderr.decode()), arguments


def test_unreadable_inputs_give_one_clear_error(tmp_path):
    truncated = tmp_path / "cut.ndjson.gz"
    truncated.write_bytes(gzip.compress(b'{"type": "org_sso_toggled"}\n' * 5000)[:-20])
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, message in ((truncated, "cut.ndjson.gz: unreadable after line"),
                          (empty, "a directory with no files in it"),
                          (tmp_path / "missing.ndjson", "missing.ndjson: no such file or directory")):
        done = subprocess.run([*CCL, "detect", "--events", str(path)], cwd=ROOT, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


# -- bounded memory -------------------------------------------------------------------------------

def normalized_history(path: Path, count: int) -> Path:
    """`count` normalized events of the simulator's mix over 30 days in pages of 1,000 (built from a
    sample), the pages in no order (several collectors' files concatenated): only sorting puts them right."""
    from ccl.simulator.generator import ActivityFactory
    from ccl.simulator.population import Population

    rng = random.Random(11)
    factory = ActivityFactory(Population(rng), rng)
    normalizer = Normalizer()
    sample = [normalizer.normalize(factory.make(factory.random_type(), "2026-01-01T00:00:00Z")) for _ in range(400)]
    templates = [orjson.dumps({**event, "id": "@ID@", "timestamp": "@TIME@"}, option=orjson.OPT_SORT_KEYS)
                 for event in sample]  # keys sorted, as Vector writes JSON
    start, step = 1_767_225_600.0, 30 * 86400 / count  # 2026-01-01, 30 days
    pages = [range(first, min(first + 1000, count))[::-1] for first in range(0, count, 1000)]
    rng.shuffle(pages)
    with path.open("wb") as out:
        for index in itertools.chain(*pages):  # as a collector catching up writes: pages newest first inside
            line = templates[index % len(templates)].replace(b"@ID@", b"activity_rss%09d" % index)
            out.write(line.replace(b"@TIME@", _iso(start + index * step).encode()) + b"\n")
    return path


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def peak_rss_kb(*args: str) -> tuple[int, str]:
    """Run `ccl detect`; the peak resident memory of its largest process (KB) and its stderr."""
    with open(os.devnull, "wb") as devnull:
        process = subprocess.Popen([*CCL, "detect", *args], cwd=ROOT, stdout=devnull, stderr=subprocess.PIPE)
        stderr = process.stderr.read().decode()  # type: ignore[union-attr]
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, stderr
    return usage.ru_maxrss, stderr


@pytest.fixture(scope="module")
def big_and_small(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("rss")
    return normalized_history(work / "big.ndjson", 200_000), normalized_history(work / "small.ndjson", 20_000)


def test_a_tiny_sort_buffer_spills_to_disk_and_memory_stays_flat(big_and_small):
    big, small = big_and_small
    small_peak, _ = peak_rss_kb("--events", str(small), "--sort-buffer", "10000", "--jobs", "2")
    big_peak, summary = peak_rss_kb("--events", str(big), "--sort-buffer", "10000", "--jobs", "2")
    runs = int(summary.split("sorted in ")[1].split(" runs")[0])
    assert runs >= 8  # ~90,000 events any rule can match, 10,000 at a time
    assert big_peak <= small_peak * 1.15, (small_peak, big_peak)  # ten times the events, the same memory
    assert "\r" not in summary and "events read" not in summary  # no progress on a pipe


def test_progress_is_drawn_on_a_terminal(big_and_small):
    big, _ = big_and_small
    leader, follower = pty.openpty()
    with open(os.devnull, "wb") as devnull:
        process = subprocess.Popen([*CCL, "detect", "--events", str(big), "--sort-buffer", "10000"], cwd=ROOT,
                                   stdout=devnull, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.wait() == 0
    lines = shown.decode().replace("\r\n", "\n").split("\r")  # the terminal writes newlines as \r\n
    assert any("events read (" in line and "/s)" in line for line in lines), lines[:5]
    assert lines[-1].strip().startswith("200,000 events")  # the progress line is wiped before the summary
