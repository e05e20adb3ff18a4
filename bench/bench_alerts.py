"""The alert budget: how many signals the rules raise on a normal organization's month (`make bench`).

Thirty days of `ccl simulate --profile enterprise` (a 5,000-person organization, rates in the README,
written before any rule was tuned) go through `ccl detect`, with GeoIP from MaxMind's test database
(ccl/vector/maxmind_testdb.py). Prints signals per day by severity, per rule over the month, and checks the
goal: at most 1 high or critical signal in any 7 days, at most 5 medium on any day. Then every
attack story of `ccl simulate --scenario all` (ccl/simulator/scenarios.py) is played into the same
month, on its own afternoon of the second half (after every rule's learning week), and must still be
caught: a signal of each rule named for it (CAUGHT_BY) carries one of the story's activities.

The days are generated once and cached under bench/.data (gitignored): raw (as the API sends them)
and normalized (vector/normalize.vrl plus the GeoIP stage, as Vector hands them to Datadog; only
the types some rule can match, which is all `ccl detect` would normalize anyway). Each cache is
keyed by what made it (the simulator's sources, the seed and size; the GeoIP database, the VRL and
the types the rules need), so a change rebuilds it. The first run takes most of an hour on two cores
(VRL normalization and the GeoIP lookup of about 3 million activities); later runs, a few minutes.

    python bench/bench_alerts.py [--days 30] [--people 5000] [--seed 1] [--jobs N] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import zstandard

from ccl.content.assets import load_all
from ccl.content.catalog import activity_types
from ccl.detection.actor_matrix import watched_types
from ccl.detection.engine import Engine
from ccl.detection.rules import SEVERITIES, build_rule
from ccl.simulator.enterprise import DAY, EnterpriseProfile
from ccl.simulator.scenarios import CAUGHT_BY, SCENARIOS
from ccl.vector.maxmind_testdb import city_test_database
from ccl.vector.normalize import Normalizer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
START = datetime(2026, 11, 2, tzinfo=UTC).timestamp()  # a Monday
SOURCES = ("ccl/simulator/enterprise.py", "ccl/simulator/population.py", "ccl/simulator/generator.py",
           "ccl/data/activity-types.json")
BUDGET_HIGH_PER_WEEK = 1
BUDGET_MEDIUM_PER_DAY = 5


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()[:12]


def _day_name(index: int) -> str:
    return datetime.fromtimestamp(START + index * DAY, UTC).strftime("%Y-%m-%d")


# -- the month, raw -------------------------------------------------------------------------------

def raw_month(seed: int, people: int, days: int) -> Path:
    """One zstd NDJSON file per UTC day, generated in one pass (trips and departures carry over)."""
    key = _digest(*((ROOT / source).read_bytes() for source in SOURCES), f"{seed}:{people}:{days}".encode())
    target = DATA / f"enterprise-s{seed}-p{people}-{days}d-{key}" / "raw"
    if target.is_dir():
        return target
    print(f"generating {days} days of the enterprise profile ({people:,} people, seed {seed}) ...", flush=True)
    partial = target.with_name("raw.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    profile = EnterpriseProfile(seed=seed, people=people)
    compressor = zstandard.ZstdCompressor(level=3)
    current, writer, handle, counts = None, None, None, Counter()
    for activity in profile.activities(START, START + days * DAY):
        day = activity["created_at"][:10]
        if day != current:
            if writer is not None:
                writer.close()
                handle.close()
            current = day
            handle = (partial / f"{day}.ndjson.zst").open("wb")
            writer = compressor.stream_writer(handle)
        writer.write(orjson.dumps(activity) + b"\n")
        counts[day] += 1
    if writer is not None:
        writer.close()
        handle.close()
    partial.rename(target)
    print(f"  {sum(counts.values()):,} activities", flush=True)
    return target


def month_types(raw: Path) -> Counter:
    """How many activities of each type the month holds (counted once, kept beside the days)."""
    cached = raw.parent / "types.json"
    if cached.exists():
        return Counter(json.loads(cached.read_text()))
    counts: Counter = Counter()
    for day in sorted(raw.glob("*.ndjson.zst")):
        for line in _read_zst(day):
            if line:
                counts[orjson.loads(line)["type"]] += 1
    cached.write_text(json.dumps(dict(sorted(counts.items()))))
    return counts


def _read_zst(path: Path):
    with path.open("rb") as handle, zstandard.ZstdDecompressor().stream_reader(handle) as reader:
        buffer = b""
        while chunk := reader.read(1 << 20):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            yield from lines
        if buffer:
            yield buffer


# -- the month, normalized ------------------------------------------------------------------------

def _normalize_day(raw: Path, target: Path, geoip: Path, wanted: list[str]) -> int:
    """Normalize the day's activities of the wanted types (keys sorted, as Vector writes JSON)."""
    names = set(wanted)
    normalizer = Normalizer(geoip)
    compressor = zstandard.ZstdCompressor(level=3)
    written = 0
    partial = target.parent / f".{target.name}.partial"  # hidden until complete
    with partial.open("wb") as handle, compressor.stream_writer(handle) as writer:
        for line in _read_zst(raw):
            if not line:
                continue
            activity = orjson.loads(line)
            if activity.get("type") not in names:
                continue
            writer.write(orjson.dumps(normalizer.normalize(activity), option=orjson.OPT_SORT_KEYS) + b"\n")
            written += 1
    partial.rename(target)
    return written


def normalized_month(raw: Path, geoip: Path, wanted: set[str], jobs: int) -> Path:
    """The days normalized; reused while they hold every type the rules need (manifest.json says which)."""
    vrl = b"".join(path.read_bytes() for path in sorted((ROOT / "vector").glob("*.vrl")))
    target = raw.parent / f"normalized-{_digest(geoip.read_bytes(), vrl)}"
    manifest = target / ".manifest.json"  # hidden: ccl detect reads every other file of the directory
    held = set(json.loads(manifest.read_text())["types"]) if manifest.exists() else set()
    if not wanted <= held:
        shutil.rmtree(target, ignore_errors=True)
        held = set(wanted)
    target.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"types": sorted(held)}))
    todo = [day for day in sorted(raw.glob("*.ndjson.zst")) if not (target / day.name).exists()]
    if todo:
        print(f"normalizing {len(todo)} days with GeoIP ({jobs} processes; the {len(held)} activity types the "
              "rules can match) ...", flush=True)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_normalize_day, day, target / day.name, geoip, sorted(held)) for day in todo]
            for day, future in zip(todo, futures, strict=True):
                print(f"  {day.name[:10]}: {future.result():,} events", flush=True)
    return target


# -- the stories ----------------------------------------------------------------------------------

def scenario_events(seed: int, people: int, days: int, geoip: Path) -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
    """Every story on its own afternoon of the second half, normalized, with the ids of its activities."""
    profile = EnterpriseProfile(seed=seed, people=people)
    normalizer = Normalizer(geoip)
    placed: dict[str, set[str]] = {}
    events = []
    for number, name in enumerate(SCENARIOS):
        start = START + (days // 2 + number % (days // 2)) * DAY + 14 * 3600
        placed[name] = set()
        for offset, activity in SCENARIOS[name](profile.factory):
            activity["created_at"] = datetime.fromtimestamp(start + offset, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            placed[name].add(activity["id"])
            events.append(normalizer.normalize(activity))
    return sorted(events, key=lambda event: event["created_at"]), placed


def mixed_month(normalized: Path, stories: list[dict[str, Any]], work: Path) -> Path:
    """The month with the stories merged into their days in time order, so ccl detect needs no sort."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in stories:
        by_day[event["created_at"][:10]].append(event)
    for day in sorted(normalized.glob("*.ndjson.zst")):
        target = work / day.name
        extra = by_day.get(day.name[:10])
        if not extra:
            target.symlink_to(day)
            continue
        with target.open("wb") as handle, zstandard.ZstdCompressor(level=1).stream_writer(handle) as writer:
            pending = list(extra)
            for line in _read_zst(day):
                if not line:
                    continue
                moment = orjson.loads(line)["created_at"]
                while pending and pending[0]["created_at"] <= moment:
                    writer.write(orjson.dumps(pending.pop(0), option=orjson.OPT_SORT_KEYS) + b"\n")
                writer.write(line + b"\n")
            for event in pending:
                writer.write(orjson.dumps(event, option=orjson.OPT_SORT_KEYS) + b"\n")
    return work


# -- running ccl detect ---------------------------------------------------------------------------

def detect(inputs: list[Path], geoip: Path, jobs: int | None) -> tuple[list[dict[str, Any]], float]:
    command = [sys.executable, "-m", "ccl", "detect", "--geoip-db", str(geoip),
               *(["--jobs", str(jobs)] if jobs is not None else [])]
    for path in inputs:
        command += ["--events", str(path)]
    began = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        sys.exit(f"ccl detect failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    print(f"  {done.stderr.decode().strip().splitlines()[-1]} ({elapsed:.0f} s)", flush=True)
    return [json.loads(line) for line in done.stdout.splitlines()], elapsed


# -- the report -----------------------------------------------------------------------------------

def per_day(signals: list[dict[str, Any]], days: int) -> list[Counter]:
    table = [Counter() for _ in range(days)]
    for signal in signals:
        moment = datetime.fromisoformat(signal["first_seen"].replace("Z", "+00:00")).timestamp()
        index = int((moment - START) // DAY)
        if 0 <= index < days:
            table[index][signal["severity"]] += 1
    return table


def budget(table: list[Counter]) -> dict[str, Any]:
    high = [day["high"] + day["critical"] for day in table]
    weeks = [sum(high[start:start + 7]) for start in range(0, max(len(high) - 6, 1))]
    medium = [day["medium"] for day in table]
    return {"high_or_critical_total": sum(high), "high_or_critical_max_7_days": max(weeks),
            "high_or_critical_per_week": round(sum(high) / (len(high) / 7), 2),
            "medium_total": sum(medium), "medium_max_day": max(medium),
            "medium_per_day": round(sum(medium) / len(medium), 2),
            "met": max(weeks) <= BUDGET_HIGH_PER_WEEK and max(medium) <= BUDGET_MEDIUM_PER_DAY}


def print_days(table: list[Counter]) -> None:
    order = list(reversed(SEVERITIES))
    print(f"\n{'day':<16}" + "".join(f"{name:>10}" for name in order))
    for index, day in enumerate(table):
        label = f"{_day_name(index)} {datetime.fromtimestamp(START + index * DAY, UTC):%a}"
        print(f"{label:<16}" + "".join(f"{day[name]:>10}" for name in order))
    total = Counter()
    for day in table:
        total.update(day)
    print(f"{'per day (mean)':<16}" + "".join(f"{total[name] / len(table):>10.2f}" for name in order))


def per_rule(signals: list[dict[str, Any]], days: int) -> list[tuple[str, str, int, float]]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for signal in signals:
        counts[(signal["rule"], signal["severity"])] += 1
    return sorted(((rule, severity, count, count / days) for (rule, severity), count in counts.items()),
                  key=lambda row: (-SEVERITIES.index(row[1]), -row[2], row[0]))


def caught(signals: list[dict[str, Any]], placed: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    found = {}
    for name, ids in placed.items():
        rules = sorted({s["rule"] for s in signals if ids & set(s["activity_ids"])})
        expected = list(CAUGHT_BY.get(name, ()))
        found[name] = {"expected": expected, "caught": bool(expected) and set(expected) <= set(rules), "rules": rules}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, help="processes for normalizing (default: 2 at most) and for "
                                                   "ccl detect (default: its own)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    began = time.monotonic()
    missing = sorted(set(SCENARIOS) - set(CAUGHT_BY))
    if missing:
        sys.exit(f"no rule named to catch the stories {missing}: add them to CAUGHT_BY")
    geoip = city_test_database()
    assets, problems = load_all((ROOT / "detections",), ROOT)
    if problems:
        sys.exit("\n".join(map(str, problems)))
    rules = [build_rule(asset) for asset in assets if asset.kind == "rule"]
    wanted = Engine(rules).event_names() or set(activity_types())  # None: some rule matches any event
    raw = raw_month(options.seed, options.people, options.days)
    prepared_at = time.monotonic()
    normalized = normalized_month(raw, geoip, wanted, options.jobs or min(2, os.cpu_count() or 1))
    normalized_at = time.monotonic()
    print(f"\nbenign month: ccl detect over {options.days} normalized days ({len(rules)} rules)", flush=True)
    benign, benign_seconds = detect([normalized], geoip, options.jobs)
    table = per_day(benign, options.days)
    print_days(table)
    figures = budget(table)
    print(f"\nhigh or critical: {figures['high_or_critical_total']} in {options.days} days "
          f"({figures['high_or_critical_per_week']} a week; at most {figures['high_or_critical_max_7_days']} in any "
          f"7 days; budget {BUDGET_HIGH_PER_WEEK})")
    print(f"medium: {figures['medium_total']} ({figures['medium_per_day']} a day; at most {figures['medium_max_day']} "
          f"on one day; budget {BUDGET_MEDIUM_PER_DAY})")
    print(f"budget {'MET' if figures['met'] else 'NOT MET'}")
    rows = per_rule(benign, options.days)
    print(f"\n{'rule':<40}{'severity':>10}{'signals':>10}{'per day':>10}")
    for rule, severity, count, daily in rows:
        print(f"{rule:<40}{severity:>10}{count:>10}{daily:>10.2f}")
    silent = sorted({rule.id for rule in rules} - {row[0] for row in rows})
    present = month_types(raw)
    unfed = [rule.id for rule in rules if rule.id in silent
             and not any(present[t] for query in rule.queries for t in watched_types(query))]
    print(f"silent all month ({len(silent)}): {', '.join(silent)}")
    print(f"  of which the profile never sends a type they watch ({len(unfed)}; their benign rate is not measured "
          f"here): {', '.join(unfed)}")

    stories, placed = scenario_events(options.seed, options.people, options.days, geoip)
    with tempfile.TemporaryDirectory() as work:
        print(f"\nthe month with every story of `ccl simulate --scenario all` ({len(placed)}) played into it",
              flush=True)
        mixed, mixed_seconds = detect([mixed_month(normalized, stories, Path(work))], geoip, options.jobs)
    found = caught(mixed, placed)
    for name, result in found.items():
        mark = "caught" if result["caught"] else "MISSED"
        print(f"  {name:<28} {mark} by {', '.join(result['expected'])}; every rule it raised: "
              f"{', '.join(result['rules']) or '-'}")
    elapsed = time.monotonic() - began
    print(f"\nruntime: {elapsed:.0f} s (generation {prepared_at - began:.0f} s, normalization "
          f"{normalized_at - prepared_at:.0f} s, ccl detect {benign_seconds:.0f} s benign + {mixed_seconds:.0f} s "
          "with the stories)")
    if options.json:
        options.json.write_text(json.dumps({
            "days": options.days, "people": options.people, "seed": options.seed, "rules": len(rules),
            "per_day": [dict(day) for day in table], "budget": figures,
            "per_rule": [{"rule": r, "severity": s, "signals": c} for r, s, c, _ in rows],
            "silent": silent, "never_fed": unfed,
            "stories": found, "seconds": round(elapsed)}, indent=2) + "\n")
    return 0 if all(result["caught"] for result in found.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
