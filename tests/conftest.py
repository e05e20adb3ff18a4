"""Shared fixtures: a simulator on 127.0.0.1, and the collector run as Vector runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ccl.simulator import FaultPlan, Simulator
from tests.replay_match import parsed_body, parsed_query

# Built from pieces so that no file holds something shaped like a real key; the value is
# distinctive so that the secret-scanning tests can look for it anywhere.
TEST_KEY = "sk-ant-api01-" + "TESTKEY-never-in-output-" + "7f3a9c"
ADMIN_TEST_KEY = "sk-ant-admin01-" + "TESTKEY-never-in-output-" + "51be0d"
ROOT = Path(__file__).resolve().parent.parent
CCL = [sys.executable, "-m", "ccl"]
# The simulator makes its newest history visible up to 1.5 s late (USUAL_DELAY, as the API's own
# ingestion delay); a single `--once` run started within that time cannot see it, and on a loaded
# machine that made an activity look lost. Tests that compare one run with the whole history, and
# are about something else, give the simulator none (the delay has its own tests).
NO_DELAY = (0.0, 0.0)


@dataclass
class CollectorRun:
    returncode: int
    stdout: bytes
    stderr: str
    seconds: float

    @property
    def activities(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.decode().splitlines() if line.strip()]

    @property
    def ids(self) -> list[str]:
        return [activity["id"] for activity in self.activities]

    @property
    def logs(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr.splitlines() if line.strip()]

    def log_messages(self, level: str | None = None) -> list[str]:
        return [entry["message"] for entry in self.logs if level is None or entry["level"] == level]


def collector_env(url: str, key: str | None = TEST_KEY, **extra: str) -> dict[str, str]:
    env = {key_: value for key_, value in os.environ.items()
           if key_ not in ("ANTHROPIC_COMPLIANCE_KEY", "CCL_API_URL", "CCL_STATE_DIR")}
    env["CCL_API_URL"] = url
    if key is not None:
        env["ANTHROPIC_COMPLIANCE_KEY"] = key
    env.update(extra)
    return env


def collector_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "collector", "--log-format", "json", *args]


def run_collector(url: str, state_dir: Path, *args: str, key: str | None = TEST_KEY, timeout: float = 60,
                  **env: str) -> CollectorRun:
    started = time.monotonic()
    completed = subprocess.run(
        collector_command("--state-dir", str(state_dir), *args),
        env=collector_env(url, key, **env), capture_output=True, timeout=timeout, cwd=ROOT,
    )
    return CollectorRun(completed.returncode, completed.stdout, completed.stderr.decode(),
                        time.monotonic() - started)


@pytest.fixture
def make_simulator() -> Iterator:
    started: list[Simulator] = []

    def factory(faults: str = "", live_rate: float = 0.0, **options) -> Simulator:
        """History at `rate` per second; after start, new traffic at `live_rate` (none by default)."""
        options.setdefault("rate", 0)
        options.setdefault("late_fraction", 0)
        simulator = Simulator(faults=FaultPlan.parse(faults), **options)
        simulator.rate = live_rate
        started.append(simulator.start())
        return simulator

    yield factory
    for simulator in started:
        simulator.stop()


def history_ids(simulator: Simulator, since_epoch: float) -> set[str]:
    """Ids of the simulated history (not the simulator's own compliance_api_accessed rows)."""
    from collector.timeparse import parse_created_at

    return {
        activity["id"] for activity in simulator.store.all_activities()
        if activity["type"] != "compliance_api_accessed"
        and (parse_created_at(activity["created_at"]) or 0) >= since_epoch
    }


def pytest_configure(config):
    config.addinivalue_line("markers", "simulator(**options): options of the simulator a cassette is recorded from")


def pytest_recording_configure(config, vcr):
    def query_without_time(first, second):
        def strip(request):
            return sorted((k, v) for k, v in request.query if k not in ("created_at.gte", "created_at.lt"))

        assert strip(first) == strip(second)

    vcr.register_matcher("query_without_time", query_without_time)
    vcr.register_matcher("parsed_query", parsed_query)
    vcr.register_matcher("parsed_body", parsed_body)


@pytest.fixture(scope="session")
def geoip_db() -> Path:
    """MaxMind's GeoIP2-City-Test.mmdb, from the maxminddb sdist on the package index (cached)."""
    from ccl.vector.maxmind_testdb import city_test_database

    return city_test_database()
