"""Normalizer throughput: `make bench` (after the collector benchmark).

Runs the production vector/normalize.vrl through vrl-python (what `ccl normalize`, `ccl detect`,
`ccl test` and the demo use) over realistic simulated activities, without and with GeoIP (MaxMind's
test database), and prints events per second.

    python bench/bench_normalize.py [--events 20000]
"""

from __future__ import annotations

import argparse
import random
import time

from ccl.simulator.generator import ActivityFactory
from ccl.simulator.population import Population
from ccl.vector.maxmind_testdb import city_test_database
from ccl.vector.normalize import Normalizer


def activities(count: int) -> list[dict]:
    rng = random.Random(2)
    factory = ActivityFactory(Population(rng), rng)
    return [factory.make(factory.random_type(), "2026-11-01T10:00:00.123456Z") for _ in range(count)]


def measure(label: str, normalizer: Normalizer, events: list[dict]) -> None:
    started = time.perf_counter()
    for event in events:
        normalizer.normalize(event)
    seconds = time.perf_counter() - started
    print(f"  {label:<22} {len(events) / seconds:>8,.0f} events/s  ({len(events):,} in {seconds:.2f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    count = parser.parse_args().events
    events = activities(count)
    print(f"\nnormalize.vrl through vrl-python, {count:,} simulated activities")
    measure("without GeoIP", Normalizer(), events)
    measure("with GeoIP (test db)", Normalizer(city_test_database()), events)


if __name__ == "__main__":
    main()
