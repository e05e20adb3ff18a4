"""Our rules on top of Datadog's own integration: Datadog's crawler, Datadog's pipeline, then ours.

A team may keep Datadog's crawler for ingestion and deploy only our pipeline and rules. Its events
are then the raw activity at the root (source:claude-compliance-logs), through Datadog's
integration pipeline (tests/data/datadog-integration-pipeline.yaml, copied from
DataDog/integrations-core), then through ours, which `ccl deploy` appends after it. These tests
run that path with the processor emulation and check, for whatever rules detections/ holds, that
each rule's own tests pass on it, and that every attribute a rule uses (query fields, group-bys,
distinct fields, metrics, message template attributes) is on those events, with the value the
Vector path gives, for every activity type the rule watches and every actor kind the catalog
allows for it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from ccl.content.actors import example_actor
from ccl.content.assets import load, load_all
from ccl.content.catalog import activity_types, allowed_actor_kinds
from ccl.datadog.pipeline_emulator import PipelineEmulator
from ccl.datadog.pipeline_tests import compare, flatten
from ccl.datadog.render import render_pipeline
from ccl.datadog.samples import load_samples
from ccl.detection.actor_matrix import watched_types
from ccl.detection.query import attribute_fields
from ccl.detection.query.match import values_at
from ccl.detection.rule_tests import TEST_START, build_events, run_rule_tests, test_activity
from ccl.detection.rules import Rule, build_rule
from ccl.vector.geoip import GeoIpTable
from ccl.vector.normalize import Normalizer
from tests.conftest import ROOT

DATADOG_PIPELINE = ROOT / "tests" / "data" / "datadog-integration-pipeline.yaml"
OUR_PIPELINE = ROOT / "pipelines" / "claude-compliance-logs.yaml"
TEMPLATE_ATTRIBUTE = re.compile(r"\{\{\s*@([A-Za-z0-9_.]+)\s*\}\}")
# Added by Datadog's Cloud SIEM at intake, on either path; the rules' tests `add` them.
ENRICHMENT = ("threat_intel",)
# The integration's YAML names two flags differently from the API's snake_case (is_enabled,
# is_replace_missing: the LogsPipeline and LogsStringBuilderProcessor models of datadog-api-client).
RENAMED = {"enabled": "is_enabled", "replaceMissing": "is_replace_missing"}


def api_shape(value: Any) -> Any:
    """An integration pipeline (camelCase keys) as the logs pipelines API shows it (snake_case)."""
    if isinstance(value, list):
        return [api_shape(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {RENAMED.get(key, re.sub(r"(?<=[a-z])([A-Z])", lambda m: "_" + m.group(1).lower(), key)):
            api_shape(item) for key, item in value.items()}


def datadog_integration() -> dict[str, Any]:
    return api_shape(YAML(typ="safe").load(DATADOG_PIPELINE.read_text())["pipeline"])


def rules() -> list[Rule]:
    assets, problems = load_all([ROOT / "detections"], ROOT)
    assert not problems
    return sorted((build_rule(asset) for asset in assets if asset.kind == "rule"), key=lambda rule: rule.id)


RULES = rules()


class DatadogThenOurs:
    """The events a team on Datadog's crawler gets, as `normalize()` so that rule tests can use it."""

    def __init__(self, geoip_db: Path | None):
        table = GeoIpTable(geoip_db) if geoip_db else None
        self.datadog = PipelineEmulator(datadog_integration(), table)
        self.ours = PipelineEmulator(render_pipeline(load("pipeline", OUR_PIPELINE)), table)

    def normalize(self, activity: dict[str, Any]) -> dict[str, Any]:
        return self.ours.run(self.datadog.run({**activity, "ddsource": "claude-compliance-logs"}))


@pytest.fixture(scope="module")
def datadog_path(geoip_db) -> DatadogThenOurs:
    return DatadogThenOurs(geoip_db)


@pytest.fixture(scope="module")
def vector_path(geoip_db) -> Normalizer:
    return Normalizer(Path(geoip_db))


def test_datadogs_pipeline_emulated_gives_datadogs_expected_output_on_its_29_samples():
    """The oracle first: the emulation of Datadog's own pipeline reproduces Datadog's own test results."""
    emulator = PipelineEmulator(datadog_integration())
    samples = load_samples(OUR_PIPELINE, "ccl:datadog-pipeline-tests.yaml")  # Datadog's own, shipped in ccl
    assert len(samples) == 29
    for raw, expected in samples:
        got = emulator.run({**raw, "ddsource": "claude-compliance-logs"})
        assert compare(expected["custom"], got) == [], raw["type"]
        assert got["timestamp"] == expected["timestamp"]
        assert "identity" not in got.get("usr", {}) and "outcome" not in got["evt"]  # ours alone adds those


def test_after_datadogs_pipeline_ours_only_adds_and_in_the_other_order_the_ocsf_arrays_double():
    datadog, ours = DatadogThenOurs(None).datadog, DatadogThenOurs(None).ours
    doubled = set()
    for raw, _ in load_samples(OUR_PIPELINE, "ccl:datadog-pipeline-tests.yaml"):
        event = {**raw, "ddsource": "claude-compliance-logs"}
        theirs, both = flatten(datadog.run(event)), flatten(ours.run(datadog.run(event)))
        assert {path: value for path, value in both.items() if path in theirs} == theirs  # nothing changed
        assert set(both) - set(theirs) <= {"evt.outcome", "status", "ccl.log_status", "usr.identity", "usr.kind"}
        reversed_order = flatten(datadog.run(ours.run(event)))
        doubled |= {path.split("[")[0] for path in set(reversed_order) - set(both)}
    # Why the README says to keep ours after Datadog's: appended twice, the arrays hold each entry twice.
    assert doubled == {"ocsf.web_resources", "ocsf.resources", "ocsf.privileges"}


@pytest.mark.parametrize("rule", RULES, ids=[rule.id for rule in RULES])
def test_every_rule_passes_its_own_tests_on_what_datadogs_pipeline_then_ours_produce(datadog_path, rule):
    outcomes = run_rule_tests(rule, datadog_path)
    assert outcomes and all(outcome.passed for outcome in outcomes), \
        [f"{o.name}: {o.detail}" for o in outcomes if not o.passed]


def used_attributes(rule: Rule) -> set[str]:
    """Every attribute the rule reads: query fields, group-bys, distinct fields, metrics, the message."""
    used = set(TEMPLATE_ATTRIBUTE.findall(rule.message))
    for query in rule.queries:
        used |= attribute_fields(query.node)
        used |= {field.removeprefix("@") for field in [*query.group_by, *query.distinct, query.metric or ""] if field}
    return used


def watched(rule: Rule, vector_path: Normalizer) -> list[tuple[str, str]]:
    """(activity type, actor kind) pairs the rule watches; for a query that names no type, every type it matches."""
    pairs: set[tuple[str, str]] = set()
    for query in rule.queries:
        types = watched_types(query) or [name for name in activity_types()
                                         if any(query.matches(catalog_event(vector_path, name, kind))
                                                for kind in allowed_actor_kinds(name))]
        pairs |= {(name, kind) for name in types for kind in allowed_actor_kinds(name)
                  if kind not in rule.excludes_actors}
    return sorted(pairs)


@cache
def catalog_activity(activity_type: str, kind: str) -> dict[str, Any]:
    """A raw activity of this type by this kind of actor, every documented field filled."""
    fields = {name: f"example_{name}" for name in activity_types().get(activity_type, {}).get("fields", [])}
    return test_activity({"type": activity_type, "actor": example_actor(kind), **fields}, TEST_START,
                         "activity_01DATADOGPATH00000000000")


_events: dict[tuple[int, str, str], dict[str, Any]] = {}


def catalog_event(path: Any, activity_type: str, kind: str) -> dict[str, Any]:
    key = (id(path), activity_type, kind)
    if key not in _events:
        _events[key] = path.normalize(catalog_activity(activity_type, kind))
    return _events[key]


@pytest.mark.parametrize("rule", RULES, ids=[rule.id for rule in RULES])
def test_every_attribute_a_rule_uses_is_on_what_datadogs_pipeline_then_ours_produce(datadog_path, vector_path,
                                                                                       rule):
    attributes = used_attributes(rule)
    pairs = watched(rule, vector_path)
    assert pairs, f"{rule.id} watches no documented activity type"
    # Every watched type and actor kind (the catalog's fields, filled), and the rule's own test
    # events, which give the fields their real shapes (objects, lists, booleans).
    compared = [(f"{activity_type} by {kind}", catalog_event(datadog_path, activity_type, kind),
                 catalog_event(vector_path, activity_type, kind)) for activity_type, kind in pairs]
    for test in rule.tests:
        pairs_of_events = zip(build_events(rule.id, test, datadog_path), build_events(rule.id, test, vector_path),
                              strict=True)
        compared += [(f"test {test['name']!r}, event {number}", ours, vectors)
                     for number, (ours, vectors) in enumerate(pairs_of_events, start=1)]
    found: set[str] = set()
    differences = []
    for label, ours, vectors in compared:
        for attribute in sorted(attributes):
            have, want = values_at(ours, attribute.split(".")), values_at(vectors, attribute.split("."))
            if have:
                found.add(attribute)
            if have != want:
                differences.append(f"{label}: @{attribute} is {have or '(absent)'} after Datadog's pipeline and "
                                   f"ours, {want or '(absent)'} after Vector")
        for query in rule.queries:
            if query.matches(ours) != query.matches(vectors):
                differences.append(f"{label}: query {query.name} matches after "
                                   f"{'Datadog' if query.matches(ours) else 'Vector'} only")
    assert not differences, differences[:10]
    missing = {attribute for attribute in attributes - found if not attribute.startswith(ENRICHMENT)}
    assert not missing, f"never on any watched activity after Datadog's pipeline and ours: {sorted(missing)}"
