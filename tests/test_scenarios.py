"""Every attack story of `ccl simulate --scenario all` is caught by the rules named for it.

Each story is played alone, after a day of its people's ordinary sign-ins (the rules that learn a
user's places need a history), normalized with GeoIP as Vector would, then run through every rule
of detections/. bench/bench_alerts.py checks the same stories inside a month of benign traffic.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from ccl.content.assets import load_all
from ccl.content.catalog import activity_types
from ccl.detection.engine import Engine
from ccl.detection.rules import build_rule
from ccl.simulator.generator import ActivityFactory
from ccl.simulator.population import Population
from ccl.simulator.scenarios import CAUGHT_BY, SCENARIOS
from ccl.vector.normalize import Normalizer
from tests.conftest import ROOT

START = datetime(2026, 5, 4, 9, tzinfo=UTC).timestamp()
OFFICE = "81.2.69.142"  # London in MaxMind's test database: the history has a place to learn


def stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def rules():
    assets, problems = load_all((ROOT / "detections",), ROOT)
    assert not problems
    return [build_rule(asset) for asset in assets if asset.kind == "rule"]


@pytest.fixture(scope="module")
def normalizer(geoip_db):
    return Normalizer(geoip_db)


def test_every_story_names_the_rules_that_catch_it():
    assert set(CAUGHT_BY) == set(SCENARIOS)
    assert all(CAUGHT_BY.values())


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_story_is_caught_by_its_rules(name, rules, normalizer):
    rng = random.Random(11)
    factory = ActivityFactory(Population(rng), rng)
    timeline = SCENARIOS[name](factory)
    story_start = START + 8 * 86400  # after the week impossible travel learns places
    history = [factory.make("sso_login_succeeded", stamp(START + index * 600.0),
                            actor=factory.actor("user_actor", person, ip=OFFICE), auth_method="sso")
               for index, person in enumerate(factory.population.people[:16])]
    story = []
    for offset, activity in timeline:
        activity["created_at"] = stamp(story_start + offset)
        assert activity["type"] in activity_types()
        story.append(activity)
    signals = Engine(rules).run([normalizer.normalize(activity) for activity in history + story])
    ids = {activity["id"] for activity in story}
    raised = {signal.rule for signal in signals if ids & set(signal.activity_ids)}
    assert set(CAUGHT_BY[name]) <= raised, f"{name} raised only {sorted(raised)}"
