"""`ccl plan`, `ccl deploy` and `ccl test --remote`: the Datadog side."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ccl.commands.validate import load_valid
from ccl.datadog.apply import apply, render_outcome
from ccl.datadog.client import ConfigError, DatadogClient, DatadogError, api_url, keys_from_environment
from ccl.datadog.deploy import Plan, build_plan, render_plan
from ccl.datadog.render import render_rule
from ccl.datadog.resources import ONLY_CHOICES, Rules
from ccl.detection.rule_tests import build_events
from ccl.detection.rules import build_rule
from ccl.vector.normalize import Normalizer


def _client(site: str | None) -> DatadogClient:
    api_key, app_key = keys_from_environment()
    return DatadogClient(api_url(site), api_key, app_key,
                         on_retry=lambda message: print(f"  {message}", file=sys.stderr, flush=True))


def _kinds(only: str | None) -> list[str]:
    return [ONLY_CHOICES[only]] if only else list(ONLY_CHOICES.values())


def _load_and_plan(site: str | None, prune: bool, only: str | None, disable_defaults: bool,
                   so: str) -> tuple[Plan, DatadogClient] | int:
    """The plan and its client, or the exit code after printing why there is none (and `so`)."""
    assets, code = load_valid((), so=so)
    if code:
        return code
    try:
        client = _client(site)
        return build_plan(assets, client, _kinds(only), prune, disable_defaults), client
    except (ConfigError, DatadogError) as error:
        print(f"error: {error}", file=sys.stderr)
        return _exit_code(error)


def run_plan(site: str | None, prune: bool, only: str | None, as_json: bool, disable_defaults: bool,
             verbose: bool) -> int:
    planned = _load_and_plan(site, prune, only, disable_defaults, so="no plan was made")
    if isinstance(planned, int):
        return planned
    plan, _ = planned
    if as_json:
        print(json.dumps([change.as_json() for change in plan.changes], indent=2))
    else:
        print(render_plan(plan, verbose))
    return 0


def run_deploy(site: str | None, prune: bool, only: str | None, yes: bool, disable_defaults: bool) -> int:
    planned = _load_and_plan(site, prune, only, disable_defaults, so="nothing was sent to Datadog")
    if isinstance(planned, int):
        return planned
    plan, client = planned
    print(render_plan(plan))
    if not any(change.action != "noop" for change in plan.changes):
        print("nothing to do")
        return 0
    if not yes:
        if not sys.stdin.isatty():
            print("error: refusing to change Datadog without confirmation: no terminal to ask on; "
                  "pass --yes (e.g. in CI)", file=sys.stderr)
            return 2
        if not click.confirm("Apply this plan?", default=False):
            print("nothing was changed")
            return 1
    outcome = apply(plan, client)
    print(render_outcome(outcome))
    if outcome.refused:
        return 3  # auth or permission: retrying will not help until the key changes
    return 1 if outcome.failed or outcome.not_attempted else 0


def run_remote_test(site: str | None, paths: tuple[Path, ...]) -> int:
    """Each rule's test events through Datadog's rule test endpoint, against the offline verdicts."""
    assets, code = load_valid(paths, so="nothing was sent to Datadog")
    if code:
        return code
    try:
        client = _client(site)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    normalizer = Normalizer()
    rules_api = Rules(client)
    disagreements, checked = [], 0
    for asset in [a for a in assets if a.kind == "rule"]:
        rule = build_rule(asset)
        payloads, labels = [], []
        for test in rule.tests:
            for number, event in enumerate(build_events(rule.id, test, normalizer), start=1):
                for index, query in enumerate(rule.queries):
                    verdict = query.matches(event)
                    payloads.append({"index": index, "expectedResult": verdict, "payload": _test_payload(event)})
                    labels.append(f"{rule.id}: test {test['name']!r}, event {number}, query {query.name}: offline "
                                  f"says {'match' if verdict else 'no match'}, Datadog says the opposite")
        try:
            results = rules_api.test(render_rule(asset), payloads)
        except DatadogError as error:
            print(f"error: {asset.path}: {error}", file=sys.stderr)
            return _exit_code(error)
        if len(results) != len(payloads):
            print(f"error: {asset.path}: Datadog's rule test endpoint answered {len(results)} verdicts for "
                  f"{len(payloads)} events; nothing was checked", file=sys.stderr)
            return 1
        checked += len(payloads)
        disagreements += [label for label, agreed in zip(labels, results, strict=False) if agreed is not True]
    for line in disagreements:
        print(line)
    print(f"{checked} query verdicts checked against Datadog's rule test endpoint: {len(disagreements)} disagree")
    return 1 if disagreements else 0


def _exit_code(error: Exception) -> int:
    """2 for bad configuration, 3 when Datadog refuses the keys or a permission, 1 otherwise."""
    if isinstance(error, ConfigError):
        return 2
    if isinstance(error, DatadogError) and error.status in (401, 403):
        return 3
    return 1


def _test_payload(event: dict[str, Any]) -> dict[str, Any]:
    """The post-normalization event as the test endpoint takes it (it does not run pipelines)."""
    return {**event, "ddsource": event.get("ddsource", "claude-compliance-logs"), "ddtags": "env:ccl-test",
            "hostname": "ccl-test", "service": event.get("service", "claude-compliance-logs"),
            "message": json.dumps({"id": event.get("id"), "type": event.get("type")})}
