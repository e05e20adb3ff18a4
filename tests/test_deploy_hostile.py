"""`ccl deploy` in a hostile world: lookalike objects, deploys that run at once, a Datadog that fails
everything or acknowledges writes without applying them.

These run against the live fake of the Datadog API (ccl/datadog/fake.py), not cassettes: each
scenario seeds the fake with objects someone else made, or injects a fault, which only makes sense
against the fake. Every test reproduces an attack of issue 11 and failed before its fix.
"""

from __future__ import annotations

import copy
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from ccl.cli import cli
from ccl.content.assets import load_all
from ccl.datadog import apply as apply_module
from ccl.datadog import client as client_module
from ccl.datadog.apply import apply
from ccl.datadog.client import DatadogClient
from ccl.datadog.deploy import build_plan
from ccl.datadog.fake import EPOCH_MS, FakeDatadog
from tests.conftest import ROOT

API_KEY = "ccltestapikey" + "1" * 19
APP_KEY = "ccltestappkey" + "1" * 27
KINDS = ["pipeline", "dashboard", "monitor", "rule"]
# What this repository deploys: one object per content file.
COUNTS = {kind: len(list((ROOT / folder).glob("*.yaml")))
          for kind, folder in (("pipeline", "pipelines"), ("dashboard", "dashboards"), ("monitor", "monitors"),
                               ("rule", "detections"))}
OURS = sum(COUNTS.values())


@pytest.fixture
def fake(monkeypatch, tmp_path):
    server = FakeDatadog(API_KEY, APP_KEY).start()
    monkeypatch.setenv("DD_API_URL", server.url)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    for directory in ("pipelines", "dashboards", "monitors", "detections", "tests/data"):
        shutil.copytree(ROOT / directory, tmp_path / directory)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(apply_module, "READ_BACK_WAITS", (0.0, 0.0))
    yield server
    server.stop()


def ccl(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert API_KEY not in result.output and APP_KEY not in result.output
    return result


def everything(fake: FakeDatadog) -> dict[str, dict]:
    with fake.lock:
        return copy.deepcopy({"rules": fake.rules, "pipelines": fake.pipelines, "dashboards": fake.dashboards,
                              "monitors": fake.monitors})


def carrying(store: dict[str, dict], tag: str) -> list[str]:
    return [key for key, item in store.items() if tag in (item.get("tags") or [])]


def described(store: dict[str, dict], marker: str) -> list[str]:
    return [key for key, item in store.items() if (item.get("description") or "").rstrip().endswith(marker)]


# -- item 2: ownership is exact -------------------------------------------------------------------

def seed_lookalikes(fake: FakeDatadog) -> None:
    """Objects other teams made that only resemble ccl's (the red team's examples)."""
    fake.monitors["77"] = {"id": 77, "name": "Payments on-call", "type": "metric alert", "query": "avg:x{*} > 1",
                           "message": "page payments", "tags": ["team:payments", "ccl:payments-oncall"],
                           "options": {}, "created": "2025-01-01T00:00:00.000000+00:00"}
    fake.rules["fraud-rule"] = {"id": "fraud-rule", "name": "Fraud", "type": "log_detection", "isDefault": False,
                                "isEnabled": True, "tags": ["ccl:fraud", "team:risk"], "queries": [], "cases": [],
                                "message": "", "version": 1, "createdAt": EPOCH_MS - 1000}
    fake.dashboards["team-view"] = {
        "id": "team-view", "title": "Team overview", "layout_type": "ordered", "widgets": [],
        "description": "Our copy of the one [managed by ccl: overview] by security; do not touch.",
        "created_at": "2025-01-01T00:00:00.000000+00:00"}
    fake.pipelines["team-pipeline"] = {
        "id": "team-pipeline", "type": "pipeline", "name": "Another team's pipeline", "is_enabled": True,
        "is_read_only": False, "filter": {"query": "source:payments"}, "processors": [],
        "description": "Modelled on [managed by ccl: claude-compliance-logs], with our own processors."}
    fake.pipeline_order.append("team-pipeline")


def test_objects_that_only_resemble_ours_are_reported_and_never_touched(fake):
    seed_lookalikes(fake)
    before = everything(fake)
    plan = ccl("plan", "--prune")
    assert plan.exit_code == 0
    for line in ("1 monitor looks like ccl's but not ccl's own, so ccl never changes or deletes it: 77 "
                 "(ccl:payments-oncall: no file here has this id, and managed-by:ccl is missing)",
                 "1 rule looks like ccl's but not ccl's own, so ccl never changes or deletes it: fraud-rule "
                 "(ccl:fraud: no file here has this id, and managed-by:ccl is missing)",
                 "team-view (its description mentions [managed by ccl: ...], not as its last line)",
                 "team-pipeline (its description mentions [managed by ccl: ...], not as its last line)"):
        assert line in plan.output, plan.output
    assert f"{OURS} to create, 0 to update, 0 to delete" in plan.output
    deploy = ccl("deploy", "--yes", "--prune")
    assert deploy.exit_code == 0 and f"applied ({OURS})" in deploy.output, deploy.output
    after = everything(fake)
    for store, key in (("monitors", "77"), ("rules", "fraud-rule"), ("dashboards", "team-view"),
                       ("pipelines", "team-pipeline")):
        assert after[store][key] == before[store][key]
    assert len(described(after["dashboards"], "[managed by ccl: overview]")) == 1
    assert len(described(after["pipelines"], "[managed by ccl: claude-compliance-logs]")) == 1


def test_a_leftover_is_pruned_only_with_the_managed_marker(fake):
    fake.monitors["90"] = {"id": 90, "name": "old", "type": "log alert", "query": "x", "message": "",
                           "tags": ["ccl:retired-monitor", "managed-by:ccl"], "options": {},
                           "created": "2025-01-01T00:00:00.000000+00:00"}
    fake.monitors["91"] = {"id": 91, "name": "older", "type": "log alert", "query": "x", "message": "",
                           "tags": ["ccl:pre-upgrade-monitor"], "options": {},
                           "created": "2025-01-01T00:00:00.000000+00:00"}
    fake.dashboards["gone-dash"] = {"id": "gone-dash", "title": "Retired", "layout_type": "ordered", "widgets": [],
                                    "description": "Retired.\n\n[managed by ccl: retired-dashboard]",
                                    "created_at": "2025-01-01T00:00:00.000000+00:00"}
    result = ccl("deploy", "--yes", "--prune", "--only", "monitors")
    assert result.exit_code == 0, result.output
    assert "delete monitor retired-monitor" in result.output and "91" in fake.monitors and "90" not in fake.monitors
    assert "91 (ccl:pre-upgrade-monitor: no file here has this id, and managed-by:ccl is missing)" in result.output
    dashboards = ccl("deploy", "--yes", "--prune", "--only", "dashboards")
    assert "delete dashboard retired-dashboard (id gone-dash)" in dashboards.output and "gone-dash" not in \
        fake.dashboards


def test_objects_deployed_before_the_managed_marker_are_adopted_not_copied(fake):
    assert ccl("deploy", "--yes", "--only", "monitors").exit_code == 0
    for monitor in fake.monitors.values():  # as ccl rendered them before `managed-by:ccl` existed
        monitor["tags"] = [tag for tag in monitor["tags"] if tag != "managed-by:ccl"]
    result = ccl("deploy", "--yes", "--only", "monitors")
    assert result.exit_code == 0 and "3 to update" in result.output and "0 to create" in result.output
    assert 'tags[1]: "source:claude-compliance-logs" -> "managed-by:ccl"' in result.output
    assert len(fake.monitors) == 3 and all("managed-by:ccl" in m["tags"] for m in fake.monitors.values())


def test_user_tags_that_forge_ownership_are_refused_by_validate(fake):
    path = Path("detections/sso-disabled.yaml")
    path.write_text(path.read_text().replace("tags: [tactic:TA0005", "tags: [ccl:admin-role-granted, "
                                                                    "managed-by:someone, tactic:TA0005"))
    monitor = Path("monitors/no-data.yaml")
    monitor.write_text(monitor.read_text().replace("tags: [team:security]", "tags: [team:security, ccl:fraud]"))
    result = ccl("validate")
    assert result.exit_code == 2
    tags_line = next(n for n, line in enumerate(path.read_text().splitlines(), 1) if line.startswith("tags:"))
    assert (f"detections/sso-disabled.yaml:{tags_line}: tags.0: 'ccl:admin-role-granted': tags `ccl:...` and "
            "`managed-by:...` "
            "are how ccl recognizes what it owns, and it adds them itself; remove this one") in result.output
    assert "tags.1: 'managed-by:someone'" in result.output
    assert "monitors/no-data.yaml:20: tags.1: 'ccl:fraud'" in result.output
    for _ in range(3):  # three deploys once made three copies of the rule
        assert ccl("deploy", "--yes").exit_code == 2
    assert not fake.rules.keys() - {"def-000-wwq"}


def test_an_object_carrying_the_keys_of_two_files_is_left_alone_and_copies_stop(fake):
    """What the old bug left behind: one rule tagged with its own key and another rule's."""
    fake.rules["both"] = {"id": "both", "name": "Claude: SSO disabled on the organization", "type": "log_detection",
                          "isDefault": False, "isEnabled": True, "queries": [], "cases": [], "message": "",
                          "tags": ["ccl:sso-disabled", "ccl:admin-role-granted", "managed-by:ccl"], "version": 1,
                          "createdAt": EPOCH_MS - 1000}
    before = copy.deepcopy(fake.rules["both"])
    for _ in range(3):
        result = ccl("deploy", "--yes", "--prune", "--only", "rules")
        assert result.exit_code == 0, result.output
        assert "both (carries the keys of admin-role-granted, sso-disabled: ccl cannot tell which file it belongs " \
               "to)" in result.output
    assert fake.rules["both"] == before
    assert len(carrying(fake.rules, "ccl:sso-disabled")) == 2  # the ambiguous one and ours, not one per deploy
    assert len(carrying(fake.rules, "ccl:admin-role-granted")) == 2


# -- item 3: two deploys at once ------------------------------------------------------------------

def client_for(fake: FakeDatadog) -> DatadogClient:
    return DatadogClient(fake.url, API_KEY, APP_KEY, sleep=lambda seconds: None)


def plan_for(fake: FakeDatadog):
    assets, problems = load_all([], Path("."))
    assert not problems
    client = client_for(fake)
    return build_plan(assets, client, KINDS, prune=False, disable_defaults=False), client


def test_a_deploy_planned_before_another_applied_creates_nothing_twice(fake):
    first, first_client = plan_for(fake)
    second, second_client = plan_for(fake)  # both saw an empty org
    assert first.count("create") == second.count("create") == OURS
    assert not apply(first, first_client).failed
    outcome = apply(second, second_client)
    assert not outcome.failed and len(outcome.applied) == OURS
    assert all("another run created it meanwhile, and it already matches" in line for line in outcome.applied)
    state = everything(fake)
    assert len(state["rules"]) == COUNTS["rule"] + 1 and len(state["monitors"]) == COUNTS["monitor"]
    assert len(state["dashboards"]) == COUNTS["dashboard"] + 1 and len(state["pipelines"]) == COUNTS["pipeline"] + 2


def test_deploys_whose_creates_interleave_make_duplicates_that_prune_removes_keeping_the_oldest(fake):
    # Datadog has no create-if-absent: two deploys that look a key up at the same moment both
    # create it. The barrier holds each create until the other deploy's create of the same object
    # arrives, after both looked the key up.
    barrier = threading.Barrier(2, timeout=30)
    fake.before_create = lambda path: barrier.wait()
    (first, first_client), (second, second_client) = plan_for(fake), plan_for(fake)
    outcomes = []
    threads = [threading.Thread(target=lambda p=p, c=c: outcomes.append(apply(p, c)))
               for p, c in ((first, first_client), (second, second_client))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    fake.before_create = None
    assert len(outcomes) == 2 and not any(outcome.failed for outcome in outcomes)
    state = everything(fake)
    assert len(carrying(state["rules"], "ccl:sso-disabled")) == 2
    assert len(described(state["dashboards"], "[managed by ccl: overview]")) == 2
    oldest = {"rule": min(carrying(state["rules"], "ccl:sso-disabled"),
                          key=lambda key: state["rules"][key]["createdAt"]),
              "monitor": min(carrying(state["monitors"], "ccl:no-data"),
                             key=lambda key: state["monitors"][key]["created"]),
              "pipeline": next(key for key in fake.pipeline_order
                               if key in described(state["pipelines"], "[managed by ccl: claude-compliance-logs]"))}

    duplicate_rule = next(key for key in carrying(state["rules"], "ccl:sso-disabled") if key != oldest["rule"])
    plan = ccl("plan")
    assert f"an identical copy of rule sso-disabled ({duplicate_rule}), most likely made by two deploys at once: " \
           f"--prune deletes it and keeps the oldest, {oldest['rule']}" in plan.output, plan.output
    pruned = ccl("deploy", "--yes", "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert f"applied ({OURS})" in pruned.output and pruned.output.count(": duplicate of ") == OURS
    after = everything(fake)
    assert carrying(after["rules"], "ccl:sso-disabled") == [oldest["rule"]]
    assert carrying(after["monitors"], "ccl:no-data") == [oldest["monitor"]]
    assert described(after["pipelines"], "[managed by ccl: claude-compliance-logs]") == [oldest["pipeline"]]
    assert len(after["rules"]) == COUNTS["rule"] + 1 and len(after["dashboards"]) == COUNTS["dashboard"] + 1
    final = ccl("plan", "--prune", "--json")
    assert '"action": "noop"' in final.output and '"delete"' not in final.output and '"create"' not in final.output


def test_a_copy_that_differs_from_ours_is_reported_not_pruned(fake):
    assert ccl("deploy", "--yes", "--only", "monitors").exit_code == 0
    ours = carrying(fake.monitors, "ccl:no-data")[0]
    clone = {**copy.deepcopy(fake.monitors[ours]), "id": 5000, "name": "[Claude] no data (our team's variant)",
             "created": "2027-01-01T00:00:00.000000+00:00"}
    fake.monitors["5000"] = clone
    result = ccl("deploy", "--yes", "--prune", "--only", "monitors")
    assert result.exit_code == 0 and "5000" in fake.monitors
    assert f"monitor 5000 also carries the key 'no-data' but differs from {ours}, the one ccl manages: ccl leaves " \
           "it alone; delete it by hand if it is a leftover" in result.output


# -- item 13: a Datadog that fails everything -----------------------------------------------------

class VirtualClock:
    """Time that passes only when the client waits, so that hours of retries take no real time."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("methods", [{"GET", "POST", "PUT", "DELETE"}, {"POST", "PUT", "DELETE"}],
                         ids=["everything", "writes"])
def test_a_datadog_answering_500_is_given_up_on_within_minutes(fake, monkeypatch, methods):
    clock = VirtualClock()
    monkeypatch.setattr(client_module, "time", clock)
    fake.failing = (500, methods)
    result = ccl("deploy", "--yes")
    assert result.exit_code == 1
    assert "HTTP 500: Internal Server Error; still failing after" in result.output
    if "GET" not in methods:
        assert "Datadog keeps failing; stopped. Run the same command again later." in result.output
        assert f"not attempted ({OURS - 1})" in result.output
    print(f"gave up after {clock.now:.0f} s of (virtual) waiting")
    assert clock.now <= 5 * 60  # it took 7,200 s (two hours) when every write failed


# -- item 14: a Datadog that answers 200 without applying -----------------------------------------

def test_writes_acknowledged_but_not_applied_are_failures(fake):
    fake.unapplied_writes = True
    created = ccl("deploy", "--yes")
    assert created.exit_code == 1
    assert "create pipeline claude-compliance-logs: Datadog answered success, but reading pipeline pipeline-" \
           in created.output and "back does not show the change: (the object is not there)" in created.output
    assert "Datadog acknowledged 3 writes in a row without applying them; stopped" in created.output
    assert "applied (" not in created.output and f"not attempted ({OURS - 3})" in created.output

    fake.unapplied_writes = False
    assert ccl("deploy", "--yes", "--only", "rules").exit_code == 0
    path = Path("detections/sso-disabled.yaml")
    path.write_text(path.read_text().replace("severity: high", "severity: critical"))
    Path("detections/user-deleted.yaml").unlink()
    fake.unapplied_writes = True
    changed = ccl("deploy", "--yes", "--prune", "--only", "rules")
    assert changed.exit_code == 1
    assert 'update rule sso-disabled: Datadog answered success, but reading rule rule-' in changed.output
    assert 'back does not show the change: cases[0].status: "high" -> "critical"' in changed.output
    assert "delete rule user-deleted: Datadog answered success, but rule rule-" in changed.output
    assert "is still there" in changed.output
