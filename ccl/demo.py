"""`make demo`: the whole path on one machine, with no Anthropic or Datadog account.

A simulated organization (with every attack scenario on its timeline) serves the Compliance
API on 127.0.0.1; the real collector reads it exactly as Vector would run it; the output is
summarized. Files land in `.demo/` so that a user can look at them afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ccl.simulator import Simulator
from ccl.simulator.scenarios import SCENARIOS

DEMO_DIR = Path(".demo")
# Long enough for the simulator's key check, short enough never to look like a real key.
DEMO_KEY = "sk-ant-api01-" + "demo-key-not-real"


def main() -> int:
    DEMO_DIR.mkdir(exist_ok=True)
    state_dir = DEMO_DIR / "state"
    for stale in state_dir.glob("*.json"):
        stale.unlink()
    activities_path = DEMO_DIR / "activities.ndjson"

    step("1. A simulated Claude Enterprise organization")
    simulator = Simulator(seed=7, rate=0.5, history=3 * 3600, scenarios=list(SCENARIOS), late_fraction=0.02)
    simulator.start(0)
    try:
        print(f"   Compliance API simulator on {simulator.url}: {len(simulator.store):,} activities over 3 hours,")
        print(f"   with these attack stories on the timeline: {', '.join(SCENARIOS)}")

        step("2. The collector, run as Vector's exec source would run it (python -m collector --once)")
        started = time.monotonic()
        run = collect(simulator.url, state_dir, activities_path)
        elapsed = time.monotonic() - started
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            print(f"the collector failed with exit code {run.returncode}", file=sys.stderr)
            return 1
        activities = [json.loads(line) for line in activities_path.read_text().splitlines()]
        summary = last_log(run.stderr, "caught up")
        print(f"   {len(activities):,} activities in {elapsed:.1f} s, {summary.get('pages')} pages, "
              f"{summary.get('requests')} requests, newest is {summary.get('lag_seconds')} s old")
        print(f"   NDJSON on stdout -> {activities_path}; JSON log lines on stderr -> {DEMO_DIR / 'collector.log'}")
        print("   first line:")
        print("   " + json.dumps(activities[0])[:150] + " ...")
        show_counts("by actor type", Counter((a.get("actor") or {}).get("type", "?") for a in activities))
        show_counts("most frequent activity types", Counter(a["type"] for a in activities), limit=8)

        step("3. A second run reads only what is new: nothing lost, nothing repeated")
        again = collect(simulator.url, state_dir, DEMO_DIR / "activities-second-run.ndjson")
        second = [json.loads(line) for line in again.stdout_lines]
        repeated = {a["id"] for a in second} & {a["id"] for a in activities}
        own_calls = sum(a["type"] == "compliance_api_accessed" for a in second)
        print(f"   {len(second)} new activities, {len(repeated)} repeated; {own_calls} of them record the "
              f"first run's own API calls")
        print("   (the API logs every Compliance API request as compliance_api_accessed, visible after a short "
              "indexing delay)")
    finally:
        simulator.stop()

    step("4. Normalized as Vector does it: vector/normalize.vrl run by Vector's VRL engine, plus GeoIP")
    normalized = normalize(activities)
    if normalized:
        failed_login = next((e for e in normalized if e.get("evt", {}).get("outcome") == "failure"
                             and e["network"]["client"].get("geoip")), normalized[0])
        print("   a failed sign-in, as Datadog will receive it (raw fields left out):")
        for key, value in summary_of(failed_login).items():
            print(f"     {key:<24} {json.dumps(value, ensure_ascii=False)}")
        countries = Counter(e["network"]["client"]["geoip"]["country"]["name"] for e in normalized
                            if e.get("evt", {}).get("name", "").endswith("login_succeeded")
                            and "country" in (e.get("network", {}).get("client", {}).get("geoip") or {}))
        show_counts("successful sign-ins by country (GeoIP)", countries, limit=6)
        print(f"   -> {DEMO_DIR / 'normalized.ndjson'}")

    step("5. The detection rules of detections/, run offline with Datadog's semantics")
    show_signals(normalized)

    step("6. Deployed to a simulated Datadog (what `ccl simulate --datadog` serves): plan, deploy, plan again")
    if not deploy_to_fake_datadog():
        return 1

    step("Next")
    for line in next_steps():
        print("   " + line)
    return 0


def next_steps() -> list[str]:
    """Commands to try, runnable as printed in this shell (ccl is on PATH only in an activated venv)."""
    venv_bin = Path(sys.prefix) / "bin"
    on_path = shutil.which("ccl") == str(venv_bin / "ccl")
    commands = [] if on_path else [(f"source {_shown(venv_bin / 'activate')}", "puts ccl on PATH (once per shell)")]
    commands += [
        ("ccl status --state-dir .demo/state", "where the collector stands"),
        ("ccl normalize .demo/activities.ndjson | head -1", "the same normalization, on any NDJSON"),
        ("ccl simulate --scenario all", "serve the fake API yourself; it prints how to collect"),
        ("ccl simulate --datadog", "a fake Datadog; it prints what to export for ccl plan and deploy"),
    ]
    width = max(len(command) for command, _ in commands)
    return [f"{command:<{width}}  # {why}" for command, why in commands]


def _shown(path: Path) -> str:
    """`path` relative to the current directory when it is below it (.venv/bin/activate)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def deploy_to_fake_datadog() -> bool:
    """`ccl plan`, `ccl deploy --yes` and `ccl plan` against the fake Datadog; True if all went well."""
    from ccl.commands.simulate import FAKE_DD_API_KEY, FAKE_DD_APP_KEY
    from ccl.datadog.fake import FakeDatadog

    fake = FakeDatadog(FAKE_DD_API_KEY, FAKE_DD_APP_KEY).start()
    env = {key: value for key, value in os.environ.items() if not key.startswith("DD_")}
    env.update({"DD_API_URL": fake.url, "DD_API_KEY": FAKE_DD_API_KEY, "DD_APP_KEY": FAKE_DD_APP_KEY})
    print(f"   fake Datadog API on {fake.url}; DD_API_URL, DD_API_KEY and DD_APP_KEY point ccl at it")
    try:
        for number, args in enumerate((["plan"], ["deploy", "--yes"], ["plan"]), start=1):
            done = subprocess.run([sys.executable, "-m", "ccl", *args], env=env, capture_output=True, text=True,
                                  check=False)
            saved = DEMO_DIR / f"{number}-{'-'.join(args).replace('--', '')}.txt"
            saved.write_text(done.stdout + done.stderr)
            print(f"   $ ccl {' '.join(args)}")
            for line in _headline(done.stdout):
                print(f"     {line}")
            print(f"     (all of it -> {saved})")
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                print(f"ccl {' '.join(args)} failed with exit code {done.returncode}", file=sys.stderr)
                return False
        if "0 to create, 0 to update, 0 to delete" not in done.stdout:
            print("the second plan is not all unchanged", file=sys.stderr)
            return False
    finally:
        fake.stop()
    return True


def _headline(output: str) -> list[str]:
    """A plan's first line and how many notes it has; a deploy's report titles."""
    lines = output.splitlines()
    outcome = [line.rstrip(":") for line in lines if line.startswith(("applied (", "FAILED (", "not attempted ("))]
    if outcome:
        return outcome
    notes = sum(line.startswith("  - ") for line in lines)
    return [line for line in lines if line.startswith("Plan against")] + (
        [f"and {notes} notes on what ccl found and leaves alone (Datadog's own pipeline and rules, lookalikes)"]
        if notes else [])


def normalize(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from ccl.vector.maxmind_testdb import TestDatabaseError, city_test_database
    from ccl.vector.normalize import Normalizer

    try:
        database = city_test_database()
        print(f"   GeoIP database: MaxMind's test database ({database})")
    except TestDatabaseError as error:
        print(f"   (no GeoIP: {error})")
        database = None
    normalizer = Normalizer(database)
    started = time.monotonic()
    normalized = [normalizer.normalize(activity) for activity in activities]
    with (DEMO_DIR / "normalized.ndjson").open("w") as out:
        out.writelines(json.dumps(event, ensure_ascii=False) + "\n" for event in normalized)
    print(f"   {len(normalized):,} events in {time.monotonic() - started:.1f} s, "
          f"{normalizer.with_geoip:,} located by GeoIP")
    return normalized


def summary_of(event: dict[str, Any]) -> dict[str, Any]:
    ocsf = event.get("ocsf", {})
    return {
        "timestamp": event.get("timestamp"), "evt": event.get("evt"), "usr": event.get("usr"),
        "network": event.get("network"), "http.useragent_details": event.get("http", {}).get("useragent_details"),
        "status": event.get("status"),
        "ocsf": {key: ocsf.get(key) for key in ("class_name", "activity_name", "status", "severity") if key in ocsf},
    }


def show_signals(events: list[dict[str, Any]]) -> None:
    from ccl.content.assets import load_all
    from ccl.detection.engine import Engine
    from ccl.detection.rules import build_rule
    from ccl.validate import validate

    assets, problems = load_all([Path("detections")], Path("."))
    problems += validate(assets)
    if problems:
        print(f"   (rules skipped: {problems[0]})")
        return
    rules = [build_rule(asset) for asset in assets if asset.kind == "rule"]
    signals = Engine(rules).run(events)
    print(f"   {len(rules)} rules over {len(events):,} events: {len(signals)} signals")
    order = ["critical", "high", "medium", "low", "info"]
    by_rule: dict[str, list[Any]] = {}
    for signal in sorted(signals, key=lambda s: (order.index(s.severity), s.first_seen)):
        by_rule.setdefault(signal.rule, []).append(signal)
    for rule_id, found in by_rule.items():
        first = found[0]
        group = ", ".join(f"{key}={value}" for key, value in first.group.items())
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        events = "event " if first.count == 1 else "events"
        print(f"     {first.severity:<8} {rule_id:<36} {first.count:>4} {events}  {group}{more}")
    report_stories(rules, {signal.rule for signal in signals})
    print("   (`ccl detect --events .demo/normalized.ndjson` prints them as JSON; on the raw activities.ndjson,")
    print("   add --geoip-db for the rules that need a location)")


def report_stories(rules: list[Any], fired: set[str]) -> None:
    """Which attack stories the rules caught, and why a story the demo's hours cannot show was missed."""
    from ccl.simulator.scenarios import CAUGHT_BY

    missed = [story for story, caught_by in CAUGHT_BY.items() if not fired & set(caught_by)]
    print(f"   attack stories caught: {len(CAUGHT_BY) - len(missed)} of {len(CAUGHT_BY)}")
    learning = {rule.id: rule.baseline_duration for rule in rules if rule.baseline_user_locations}
    for story in missed:
        waits = [f"{rule_id} learns each person's places for {seconds / 86400:g} days first"
                 for rule_id, seconds in learning.items() if rule_id in CAUGHT_BY[story]]
        why = (", ".join(waits) + ", longer than these 4 hours: bench/bench_alerts.py plays it into a month"
               if waits else "not caught: see tests/test_scenarios.py")
        print(f"     {story}: {why}")


class Run:
    def __init__(self, returncode: int, stdout_lines: list[str], stderr: str):
        self.returncode, self.stdout_lines, self.stderr = returncode, stdout_lines, stderr


def collect(api_url: str, state_dir: Path, out_path: Path) -> Run:
    env = {**os.environ, "ANTHROPIC_COMPLIANCE_KEY": DEMO_KEY, "CCL_API_URL": api_url}
    command = [sys.executable, "-m", "collector", "--once", "--since", "4h", "--state-dir", str(state_dir),
               "--log-format", "json"]
    with out_path.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, text=True, env=env, check=False)
    (DEMO_DIR / "collector.log").open("a").write(done.stderr)
    return Run(done.returncode, out_path.read_text().splitlines(), done.stderr)


def last_log(stderr: str, message: str) -> dict[str, Any]:
    for line in reversed(stderr.splitlines()):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == message:
            return entry
    return {}


def show_counts(title: str, counts: Counter[str], limit: int = 12) -> None:
    print(f"   {title}:")
    for name, count in counts.most_common(limit):
        print(f"     {count:>6,}  {name}")


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
