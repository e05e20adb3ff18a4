"""Detection engine throughput: `make bench`.

Normalizes a realistic sample of simulated activities once, replicates it to 1,000,000 events on a
30-day timeline (new ids and timestamps), then runs the whole rule set of detections/ over them:
  - the engine alone (events already in memory), the figure the 50,000 events/s target is about;
  - `ccl detect --events FILE` end to end on 200,000 events (reading and parsing JSON included).

    python bench/bench_detect.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from ccl.assets import load_all
from ccl.engine import Engine
from ccl.normalize import Normalizer
from ccl.rules import build_rule
from ccl.simulator.generator import ActivityFactory
from ccl.simulator.population import Population

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = 5000


def normalized_events(count: int) -> list[dict]:
    rng = random.Random(3)
    factory = ActivityFactory(Population(rng), rng)
    normalizer = Normalizer()
    sample = [normalizer.normalize(factory.make(factory.random_type(), "2026-01-01T00:00:00.000000Z"))
              for _ in range(SAMPLE)]
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    spacing = 30 * 86400 / count
    events = []
    for index in range(count):
        event = copy.copy(sample[index % SAMPLE])
        event["id"] = f"activity_bench{index:012d}"
        event["timestamp"] = datetime.fromtimestamp(start + index * spacing, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        events.append(event)
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    count = parser.parse_args().events
    assets, _ = load_all([ROOT / "detections"], ROOT)
    rules = [build_rule(asset) for asset in assets if asset.kind == "rule"]
    print(f"\ndetection engine, {len(rules)} rules from detections/")
    started = time.perf_counter()
    events = normalized_events(count)
    print(f"  prepared {count:,} normalized events in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    signals = Engine(rules).run(events)
    seconds = time.perf_counter() - started
    verdict = "meets" if count / seconds >= 50_000 else "MISSES"
    print(f"  engine alone:      {count / seconds:>9,.0f} events/s  ({seconds:.2f} s, {len(signals):,} signals); "
          f"{verdict} the 50,000/s target", flush=True)
    end_to_end = events[:200_000]
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "events.ndjson"
        with path.open("w") as out:
            out.writelines(json.dumps(event) + "\n" for event in end_to_end)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ccl", "detect", "--events", str(path)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
    print(f"  ccl detect (file): {len(end_to_end) / seconds:>9,.0f} events/s  ({len(end_to_end):,} events, "
          f"JSON parsing and start-up included)", flush=True)


if __name__ == "__main__":
    main()
