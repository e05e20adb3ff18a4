"""Pipeline tests: Datadog's own pipeline samples through our pipeline, emulated offline.

Each sample runs twice: raw (as Fluent Bit or Datadog's crawler would send it) and already
normalized by vector/normalize.vrl (as Vector sends it). Both must give Datadog's expected
attributes under evt, usr, network.client.ip, http and ocsf, and the date; our own additions
(evt.outcome, the log status, usr.identity and usr.kind) are not in Datadog's output and are left out of the comparison.
"""

from __future__ import annotations

from typing import Any

from ccl.content.assets import Asset
from ccl.datadog.pipeline_emulator import PipelineEmulator
from ccl.datadog.render import render_pipeline
from ccl.datadog.samples import SamplesError, load_samples
from ccl.detection.rule_tests import TestOutcome
from ccl.vector.normalize import Normalizer

GROUPS = ("evt", "usr", "network.client.ip", "http", "ocsf")
OUR_ADDITIONS = {"evt": {"outcome"}, "usr": {"identity", "kind"}}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            flat.update(flatten(item, f"{prefix}[{index}]"))
    else:
        flat[prefix] = value
    return flat


def compare(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Differences between Datadog's expected custom attributes and ours, per group."""
    differences = []
    for group in GROUPS:
        head, _, rest = group.partition(".")
        want = flatten(expected.get(head, {}))
        have = {path: value for path, value in flatten(got.get(head, {})).items()
                if path.split(".")[0].split("[")[0] not in OUR_ADDITIONS.get(head, set())}
        if rest:
            want = {p: v for p, v in want.items() if p == rest}
            have = {p: v for p, v in have.items() if p == rest}
        for path in sorted(set(want) | set(have)):
            if want.get(path, "(absent)") != have.get(path, "(absent)"):
                differences.append(f"{head}.{path}: want {want.get(path, '(absent)')!r}, "
                                   f"have {have.get(path, '(absent)')!r}")
    return differences


def run_pipeline_tests(asset: Asset, normalizer: Normalizer) -> list[TestOutcome]:
    emulator = PipelineEmulator(render_pipeline(asset))
    outcomes = []
    for entry in asset.data.get("tests", []):
        try:
            samples = load_samples(asset.path, entry["datadog_samples"])
        except SamplesError as error:
            outcomes.append(TestOutcome(asset.id, "Datadog samples", False, str(error)))
            continue
        for number, (raw, expected) in enumerate(samples, start=1):
            for label, event in (("raw", raw), ("normalized by Vector", normalizer.normalize(raw))):
                got = emulator.run({**event, "ddsource": "claude-compliance-logs"})
                problems = compare(expected["custom"], got)
                if got.get("timestamp") != expected.get("timestamp"):
                    problems.append(f"date: want {expected.get('timestamp')}, have {got.get('timestamp')}")
                again = emulator.run(got)
                if again != got:
                    problems.append("running the pipeline a second time changed the event")
                outcomes.append(TestOutcome(asset.id, f"Datadog sample {number} ({raw.get('type')}), {label}",
                                            not problems, "; ".join(problems[:3]) or "ok"))
    return outcomes
