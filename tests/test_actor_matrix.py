"""Test activities shaped like the API's, and the actor matrix `ccl test` runs over every rule."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from ccl.content.assets import Asset, plain
from ccl.content.catalog import ACTOR_KINDS
from ccl.detection.actor_matrix import rule_row
from ccl.detection.rule_tests import TEST_START, test_activity
from ccl.detection.rules import build_rule
from ccl.vector.normalize import Normalizer
from tests.conftest import CCL

RULE = """\
id: mcp-server-created
name: "Claude: MCP server added"
method: threshold
queries:
  - name: matched
    query: "@evt.name:mcp_server_created"
    group_by: ["@usr.email"]
cases:
  - condition: matched > 0
    severity: medium
severity_reason: "Medium: an MCP server can read what Claude sees and act elsewhere."
nearest: "Panther Anthropic.Activity.MCP.Server.Created (medium)"
evaluation_window: 5m
keep_alive: 1h
max_signal_duration: 1d
message: "{{@usr.email}} added an MCP server."
tags: [tactic:TA0010-exfiltration, technique:T1567-exfiltration-over-web-service]
tests:
  - name: fires
    events:
      - activity: {type: mcp_server_created, mcp_server_name: x}
    expect: {signals: 1}
  - name: quiet
    events:
      - activity: {type: mcp_server_deleted}
    expect: {signals: 0}
"""


@pytest.fixture(scope="module")
def normalizer():
    return Normalizer()


def rule(text: str):
    return build_rule(Asset("rule", Path("r.yaml"), plain(YAML(typ="rt").load(text))))


def test_activities_get_the_organization_and_actor_the_api_sends():
    sign_in_failure = test_activity({"type": "sso_login_failed"}, TEST_START, "a1")
    assert sign_in_failure["organization_id"] is None and sign_in_failure["organization_uuid"] is None
    assert sign_in_failure["actor"]["type"] == "unauthenticated_user_actor"  # the only kind the catalog allows
    api_call = test_activity({"type": "compliance_api_accessed"}, TEST_START, "a2")
    assert api_call["organization_id"] is None and api_call["actor"]["type"] == "api_actor"
    change = test_activity({"type": "org_sso_toggled", "enabled": False}, TEST_START, "a3")
    assert change["organization_id"].startswith("org_") and change["actor"]["type"] == "user_actor"
    by_key = test_activity({"type": "mcp_server_created", "actor": "admin_api_key_actor"}, TEST_START, "a4")
    assert set(by_key["actor"]) == {"type", "admin_api_key_id", "ip_address", "user_agent"}
    anthropic = test_activity({"type": "mcp_server_created", "actor": "anthropic_actor"}, TEST_START, "a5")
    assert anthropic["actor"] == {"type": "anthropic_actor", "email_address": None}
    partial = test_activity({"type": "sso_login_failed", "actor": {"ip_address": "192.0.2.9"}}, TEST_START, "a6")
    assert partial["actor"]["ip_address"] == "192.0.2.9" and partial["actor"]["user_agent"]


def test_a_rule_grouped_by_email_is_silent_for_every_actor_without_one(normalizer):
    row = rule_row(rule(RULE), normalizer)
    states = {cell.kind: cell.state for cell in row.cells}
    assert states["user_actor"] == "fires"
    # mcp_server_created allows eight kinds; only the signed-in user has an email.
    assert {kind for kind, state in states.items() if state == "silent"} == {
        "api_actor", "admin_api_key_actor", "unauthenticated_user_actor", "anthropic_actor",
        "service_account_actor", "scim_directory_sync_actor", "federated_identity_actor"}
    fixed = rule_row(rule(RULE.replace('["@usr.email"]', '["@usr.identity"]')), normalizer)
    assert {cell.state for cell in fixed.cells} == {"fires"} and len(fixed.cells) == 8


def test_an_excluded_kind_is_honoured_and_a_stale_exclusion_is_reported(normalizer):
    excluded = RULE.replace("cases:", "excludes_actors:\n  - {actor: anthropic_actor, reason: Anthropic's changes go "
                                      "through our vendor review}\ncases:")
    row = rule_row(rule(excluded), normalizer)
    assert {c.kind: c.state for c in row.cells}["anthropic_actor"] == "excluded"
    stale = rule_row(rule(excluded.replace('["@usr.email"]', '["@usr.identity"]')), normalizer)
    assert [(c.kind, c.state) for c in stale.problems()] == [("anthropic_actor", "excluded but fires")]


def test_a_burst_rule_is_replayed_as_a_burst_of_each_kind(normalizer):
    burst = RULE.replace("matched > 0", "matched > 4").replace(
        '["@usr.email"]', '["@usr.identity"]\n    aggregation: cardinality\n    distinct: ["@id"]').replace(
        "      - activity: {type: mcp_server_created, mcp_server_name: x}",
        "      - activity: {type: mcp_server_created, mcp_server_name: x}\n        repeat: 5")
    row = rule_row(rule(burst), normalizer)
    assert row.burst == 5 and {cell.state for cell in row.cells} == {"fires"}


def test_ccl_test_fails_when_a_rule_misses_an_allowed_actor(tmp_path):
    (tmp_path / "detections").mkdir()
    (tmp_path / "detections" / "mcp.yaml").write_text(RULE)
    done = subprocess.run([*CCL, "test", "--coverage"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "FAIL    actor matrix: fires for every actor kind its types allow" in done.stdout
    assert "mcp_server_created by api_actor: silent" in done.stdout
    assert "1 fire, 0 excluded with a reason, of 8" in done.stdout


def test_every_documented_kind_has_a_realistic_actor():
    for kind in ACTOR_KINDS:
        actor = test_activity({"type": "workspace_created", "actor": kind}, TEST_START, "a")["actor"]
        assert actor["type"] == kind and len(actor) > 1


def test_the_detections_page_states_the_matrix_of_the_repository_rules(normalizer):
    from ccl.content.assets import load_all
    from ccl.detection.actor_matrix import matrix, totals
    from tests.conftest import ROOT

    assets, _ = load_all((ROOT / "detections",), ROOT)
    counts = totals(matrix([build_rule(a) for a in assets if a.kind == "rule"], normalizer))
    assert counts["fires"] + counts["excluded"] == counts["total"]  # the matrix is complete
    readme = (ROOT / "docs" / "detections.md").read_text()
    assert f"**{counts['fires']} of {counts['total']} fire, {counts['excluded']} excluded**" in readme
