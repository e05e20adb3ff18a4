"""`ccl detect` throughput and memory: streaming beside the whole-input path, in the same run (`make bench`).

Builds two files from a realistic sample of simulated activities (the simulator's mix), replicated
with new ids and times over 30 days and written newest-first, as a backfill writes them:
  raw.ndjson         raw activities, normalized by `ccl detect` on the way;
  normalized.ndjson  the same, normalized first (keys sorted, as Vector writes JSON).
Then runs `ccl detect` on each, end to end (start-up, reading, parsing, normalizing, sorting):
the streaming path (default options: every CPU, the default sort buffer), and the whole-input
path as it was before streaming (`--whole-input`: everything in memory, sorted at the end).
Prints events/s, CPU time per event and peak RSS (all processes of the run added up, RSS sampled
every 100 ms), the streaming/whole-input ratios, and checks that both wrote the same signals. On a
machine shared with other work, events/s moves with the load; CPU per event much less so.

The whole-input path holds every event in memory (~8 KB each): past --baseline-events (default
1,000,000) it runs on the first part of the file only, and the ratio compares rates.

    python bench/bench_detect.py [--events 1000000] [--baseline-events 1000000] [--only raw|normalized]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from ccl.normalize import Normalizer
from ccl.simulator.generator import ActivityFactory
from ccl.simulator.population import Population

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = 5000
SPAN = 30 * 86400.0
START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
PAGE = os.sysconf("SC_PAGE_SIZE")


def write_inputs(work: Path, count: int) -> dict[str, Path]:
    rng = random.Random(3)
    factory = ActivityFactory(Population(rng), rng)
    raw_sample = [factory.make(factory.random_type(), "2026-01-01T00:00:00.000000Z") for _ in range(SAMPLE)]
    normalizer = Normalizer()
    normalized_sample = [normalizer.normalize(activity) for activity in raw_sample]
    paths = {"raw": work / "raw.ndjson", "normalized": work / "normalized.ndjson"}
    with paths["raw"].open("wb") as raw, paths["normalized"].open("wb") as normalized:
        for index in reversed(range(count)):  # newest first
            stamp = datetime.fromtimestamp(START + index * SPAN / count, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            ident = f"activity_bench{index:012d}"
            raw.write(orjson.dumps({**raw_sample[index % SAMPLE], "id": ident, "created_at": stamp}) + b"\n")
            normalized.write(orjson.dumps({**normalized_sample[index % SAMPLE], "id": ident, "created_at": stamp,
                                           "timestamp": stamp}, option=orjson.OPT_SORT_KEYS) + b"\n")
    return paths


def head(path: Path, lines: int) -> Path:
    """The first `lines` lines of `path`, in a file beside it."""
    part = path.with_name(f"{path.stem}-first-{lines}{path.suffix}")
    with path.open("rb") as source, part.open("wb") as out:
        for number, line in enumerate(source):
            if number >= lines:
                break
            out.write(line)
    return part


@dataclass
class Run:
    seconds: float
    cpu_seconds: float  # user + system, the run's processes added up
    peak_rss: int  # bytes, the run's processes added up
    signals_digest: str
    summary: str


def tree_rss(root: int) -> int:
    """Resident memory of `root` and every process under it (their RSS added up: shared pages count twice)."""
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as statm:
                total += int(statm.read().split()[1]) * PAGE
            for thread in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{thread}/children", "rb") as children:
                    pending.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return total


def measure(arguments: list[str], out: Path) -> Run:
    started = time.perf_counter()
    errors = out.with_suffix(".stderr")
    with out.open("wb") as stdout, errors.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "ccl", "detect", *arguments], cwd=ROOT, stdout=stdout,
                                   stderr=stderr)
        peak, done = 0, threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.1):
                peak = max(peak, tree_rss(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)  # its usage includes the processes it waited for
        process.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    seconds = time.perf_counter() - started
    text = errors.read_text()
    if process.returncode != 0:
        sys.exit(f"ccl detect {' '.join(arguments)} failed ({process.returncode}): {text[-2000:]}")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return Run(seconds, usage.ru_utime + usage.ru_stime, max(peak, usage.ru_maxrss * 1024), digest,
               text.strip().splitlines()[-1])


def compare(kind: str, path: Path, count: int, baseline_count: int, work: Path) -> None:
    print(f"\n  {kind} input, {count:,} activities (newest first):", flush=True)
    streaming = measure(["--events", str(path)], work / f"{kind}-streaming.out")
    baseline_path = path if baseline_count >= count else head(path, baseline_count)
    whole = measure(["--whole-input", "--events", str(baseline_path)], work / f"{kind}-whole.out")
    same = None
    if baseline_count >= count:
        same = streaming.signals_digest == whole.signals_digest
    else:
        check = measure(["--events", str(baseline_path)], work / f"{kind}-streaming-check.out")
        same = check.signals_digest == whole.signals_digest
    stream_rate, whole_rate = count / streaming.seconds, baseline_count / whole.seconds
    for name, run, events in (("streaming:  ", streaming, count), ("whole-input:", whole, baseline_count)):
        print(f"    {name} {events / run.seconds:>9,.0f} events/s  peak RSS {run.peak_rss / 2**20:>7,.0f} MB  "
              f"({events:,} in {run.seconds:.1f} s, {run.cpu_seconds * 1e6 / events:,.0f} CPU-µs per event)")
    print(f"    [{streaming.summary}]")
    target = {"raw": 4.0, "normalized": 1.8}[kind]
    ratio = stream_rate / whole_rate
    cpu_ratio = (whole.cpu_seconds / baseline_count) / (streaming.cpu_seconds / count)
    print(f"    ratio:       {ratio:>9.2f}x events/s (target {target}x: {'meets' if ratio >= target else 'MISSES'}), "
          f"{cpu_ratio:.2f}x less CPU per event, {whole.peak_rss / max(streaming.peak_rss, 1):.1f}x less memory; "
          f"signals {'identical' if same else 'DIFFERENT'}", flush=True)
    if not same:
        sys.exit("the streaming path and the whole-input path disagree")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--baseline-events", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["raw", "normalized"])
    options = parser.parse_args()
    count, baseline_count = options.events, min(options.events, options.baseline_events)
    print(f"\nccl detect, rules of detections/, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as temp:
        work = Path(temp)
        started = time.perf_counter()
        paths = write_inputs(work, count)
        print(f"  wrote {count:,} raw and {count:,} normalized activities in {time.perf_counter() - started:.0f} s "
              f"({paths['raw'].stat().st_size / 2**20:,.0f} MB and "
              f"{paths['normalized'].stat().st_size / 2**20:,.0f} MB)", flush=True)
        for kind in ("raw", "normalized"):
            if options.only in (None, kind):
                compare(kind, paths[kind], count, baseline_count, work)


if __name__ == "__main__":
    main()
