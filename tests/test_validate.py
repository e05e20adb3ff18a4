"""Every check of `ccl validate`, each with a broken file and the exact message it must print."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CCL

VALID = """\
id: sso-disabled
name: "Claude: SSO disabled"
method: threshold
queries:
  - name: sso_off
    query: "@evt.name:org_sso_toggled @enabled:false"
    group_by: ["@usr.email"]
cases:
  - condition: sso_off > 0
    severity: high
evaluation_window: 5m
keep_alive: 1h
max_signal_duration: 1d
message: "{{@usr.email}} disabled SSO."
tags: [tactic:TA0005-defense-evasion, technique:T1562-impair-defenses]
tests:
  - name: fires
    events:
      - activity: {type: org_sso_toggled, enabled: false}
    expect: {signals: 1}
  - name: quiet
    events:
      - activity: {type: org_sso_toggled, enabled: true}
    expect: {signals: 0}
severity_reason: "High: SSO off lets members sign in outside the identity provider."
nearest: "Panther Anthropic.Activity.SSO.Disabled (high)"
"""


def run_validate(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CCL, "validate", *args], cwd=root, capture_output=True, text=True, check=False)


def write_rule(root: Path, text: str, name: str = "rule.yaml") -> Path:
    path = root / "detections" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_valid_rule_passes(tmp_path):
    write_rule(tmp_path, VALID)
    done = run_validate(tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok: 1 rule"


CASES = [
    ("malformed YAML", VALID.replace("method: threshold", "method: [threshold"),
     "detections/rule.yaml:4: not valid YAML"),
    ("a misspelled key", VALID.replace("method: threshold", "method: threshold\nseverty: high"),
     "detections/rule.yaml:4: (top level): unknown key 'severty'; allowed here: cases, description, enabled,"),
    ("a missing key", VALID.replace('message: "{{@usr.email}} disabled SSO."\n', ""),
     "detections/rule.yaml:1: (top level): missing `message`; add it"),
    ("a wrong severity", VALID.replace("severity: high", "severity: urgent"),
     "detections/rule.yaml:10: cases.0.severity: 'urgent' is not one of info, low, medium, high, critical"),
    ("a query that does not parse", VALID.replace("@enabled:false\"", "(@enabled:false\""),
     "detections/rule.yaml:6: queries.0.query: the query does not parse: unclosed parenthesis at character 27"),
    ("a source scope in the query", VALID.replace('query: "@evt', 'query: "source:claude-compliance-logs @evt'),
     "detections/rule.yaml:6: queries.0.query: leave out `source:...`; render scopes every query"),
    ("a condition naming no query", VALID.replace("sso_off > 0", "ssoff > 0"),
     "detections/rule.yaml:9: cases.0.condition: names no query: ssoff (queries: sso_off)"),
    ("a window Datadog refuses", VALID.replace("keep_alive: 1h", "keep_alive: 45m"),
     "detections/rule.yaml:12: keep_alive: Datadog accepts only 0, 1m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 1d;"
     " 45m is not one of them"),
    ("an unreadable duration", VALID.replace("evaluation_window: 5m", "evaluation_window: five minutes"),
     "detections/rule.yaml:11: evaluation_window: cannot read 'five minutes' as a duration"),
    ("an unknown activity type", VALID.replace("@evt.name:org_sso_toggled", "@evt.name:org_sso_toggle"),
     "detections/rule.yaml:6: queries.0.query: 'org_sso_toggle' is not a documented activity type; "
     "did you mean 'org_sso_toggled'?"),
    ("a pattern matching no type", VALID.replace("@evt.name:org_sso_toggled", "@evt.name:nothing_like_*"),
     "detections/rule.yaml:6: queries.0.query: @evt.name:nothing_like_* matches none of the 514"),
    ("an unknown attribute in a query", VALID.replace("@enabled:false", "@enabeld:false"),
     "detections/rule.yaml:6: queries.0.query: @enabeld is neither a normalized attribute nor a field"),
    ("an unknown group-by attribute", VALID.replace('["@usr.email"]', '["@user.email"]'),
     "detections/rule.yaml:7: queries.0.group_by: @user.email does not exist on normalized events"),
    ("an unknown template attribute", VALID.replace("{{@usr.email}} disabled", "{{@usr.mail}} disabled"),
     "detections/rule.yaml:14: message: {{@usr.mail}} does not exist on normalized events"),
    ("no MITRE tags", VALID.replace("tags: [tactic:TA0005-defense-evasion, technique:T1562-impair-defenses]",
                                    "tags: [team:security]"),
     "detections/rule.yaml:15: tags: add a MITRE ATT&CK tactic and technique"),
    ("no test that must not fire", VALID.replace("expect: {signals: 0}", "expect: {signals: 1}"),
     "detections/rule.yaml:16: tests: every rule needs a test that must fire"),
    ("an unknown activity type in a test", VALID.replace("{type: org_sso_toggled, enabled: true}",
                                                         "{type: org_sso_toogled, enabled: true}"),
     "detections/rule.yaml:23: tests.1: activity type 'org_sso_toogled' is not documented"),
    ("a threshold case without condition", VALID.replace("  - condition: sso_off > 0\n    severity", "  - severity"),
     "detections/rule.yaml:9: cases.0: a threshold case needs a condition, e.g. `sso_off > 0`"),
    ("no severity reason", VALID.replace(VALID[VALID.index("severity_reason:"):VALID.index("nearest:")], ""),
     "detections/rule.yaml:1: (top level): missing `severity_reason`; add it"),
    ("a nearest rule that names no Datadog or Panther rule",
     VALID.replace("Panther Anthropic.Activity.SSO.Disabled (high)", "Panther SSO Disabled, high"),
     "detections/rule.yaml:26: nearest: 'Panther SSO Disabled, high' names no Datadog or Panther rule; write "),
    ("an overlapped default rule that nearest does not name",
     VALID.replace("method: threshold", 'method: threshold\noverlaps_default: ["def-000-7dn"]'),
     "detections/rule.yaml:27: nearest: the rule overlaps Datadog's def-000-7dn (overlaps_default); name it here"),
    ("a baseline duration without the baseline", VALID.replace("method: threshold", "method: threshold\n"
                                                                "impossible_travel: {baseline_duration: 7d}"),
     "detections/rule.yaml:4: impossible_travel.baseline_duration: only with baseline_user_locations: true"),
    ("a new_value rule without metric", VALID.replace("method: threshold", "method: new_value")
     .replace("  - condition: sso_off > 0\n    severity", "  - severity"),
     "detections/rule.yaml:4: queries: a new_value query needs `metric`"),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_reported_with_its_line_and_a_fix(tmp_path, text, message):
    write_rule(tmp_path, text)
    done = run_validate(tmp_path)
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_all_problems_come_in_one_run_and_ids_must_be_unique(tmp_path):
    write_rule(tmp_path, VALID, "a.yaml")
    write_rule(tmp_path, VALID.replace("keep_alive: 1h", "keep_alive: 45m"), "b.yaml")
    stray = tmp_path / "notes" / "x.yaml"
    stray.parent.mkdir()
    stray.write_text("a: 1\n")
    done = run_validate(tmp_path, "detections", "notes")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert "detections/b.yaml:1: rule id 'sso-disabled' is also used by detections/a.yaml; ids must be unique, " \
           "rename one" in lines
    assert any(line.startswith("detections/b.yaml:12: keep_alive:") for line in lines)
    assert "notes/x.yaml:0: cannot tell what this is: put it under pipelines/, dashboards/, detections/ or " \
           "monitors/" in lines
    assert lines[-1] == "3 problems"  # validate never changes anything, so it does not say it did not


def test_the_last_line_counts_the_problems_and_says_what_the_command_did_not_do(tmp_path):
    write_rule(tmp_path, VALID.replace("keep_alive: 1h", "keep_alive: 45m"))
    assert run_validate(tmp_path).stderr.splitlines()[-1] == "1 problem"
    for command, said in ((["render"], "1 problem; nothing was written"), (["test"], "1 problem; no test was run"),
                          (["plan"], "1 problem; no plan was made"),
                          (["deploy", "--yes"], "1 problem; nothing was sent to Datadog")):
        done = subprocess.run([*CCL, *command], cwd=tmp_path, capture_output=True, text=True, check=False,
                              env={**os.environ, "DD_API_URL": "http://127.0.0.1:9", "DD_API_KEY": "x" * 32,
                                   "DD_APP_KEY": "y" * 40})
        assert done.returncode == 2 and done.stderr.splitlines()[-1] == said, (command, done.stderr)


def test_the_repository_assets_validate():
    done = subprocess.run([*CCL, "validate"], cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


SEQUENCE = VALID.replace("method: threshold", "method: sequence").replace(
    "  - condition: sso_off > 0\n    severity: high", "  - severity: high").replace(
    "evaluation_window: 5m", "sequence:\n  steps:\n    - {name: off, condition: sso_off > 0, within: 5m, "
    "after_previous: 1h}\n    - {name: again, condition: sso_of > 1, within: 7m}\nevaluation_window: 5m")


def test_sequence_steps_are_checked(tmp_path):
    write_rule(tmp_path, SEQUENCE)
    done = run_validate(tmp_path)
    assert done.returncode == 2
    assert "sequence.steps.0.after_previous: the first step has no previous step" in done.stderr
    assert "sequence.steps.1.condition: names no query: sso_of (queries: sso_off)" in done.stderr
    assert "sequence.steps.1.within: Datadog accepts only" in done.stderr
    assert "sequence.steps.1: say how long after the previous step it may happen (after_previous)" in done.stderr
    assert "evaluation_window: a sequence is evaluated per step (`within`); Datadog takes 0 here" in done.stderr


def test_a_group_by_missing_on_an_allowed_actor_kind_is_a_warning(tmp_path):
    # org_sso_toggled may come from user_actor or anthropic_actor (the catalog); Anthropic has no email.
    write_rule(tmp_path, VALID)
    done = run_validate(tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok: 1 rule"
    assert ("detections/rule.yaml:7: warning: queries.0.group_by: @usr.email is missing when anthropic_actor acts "
            "(org_sso_toggled), so the rule never sees them; use @usr.identity") in done.stderr
    write_rule(tmp_path, VALID.replace('["@usr.email"]', '["@usr.identity"]'))
    assert "warning" not in run_validate(tmp_path).stderr
    excluded = VALID.replace("cases:", "excludes_actors:\n  - {actor: anthropic_actor, reason: Anthropic's own changes "
                                       "are reviewed elsewhere}\ncases:")
    write_rule(tmp_path, excluded)
    assert "warning" not in run_validate(tmp_path).stderr


def test_a_cardinality_counts_exactly_one_field(tmp_path):
    two = VALID.replace('group_by: ["@usr.email"]', 'group_by: ["@usr.email"]\n    aggregation: cardinality\n'
                        '    distinct: ["@id", "@organization_id"]')
    write_rule(tmp_path, two)
    done = run_validate(tmp_path)
    assert done.returncode == 2
    assert "detections/rule.yaml:5: queries.0: Datadog's cardinality counts exactly one field" in done.stderr


def test_a_count_over_several_events_must_count_distinct_ids(tmp_path):
    write_rule(tmp_path, VALID.replace("sso_off > 0", "sso_off > 5"))
    done = run_validate(tmp_path)
    assert done.returncode == 2
    assert ("detections/rule.yaml:5: queries.0: counts 6 events, so a replayed activity counts twice; count distinct "
            "activities: aggregation: cardinality, distinct: [\"@id\"]") in done.stderr
    replay_proof = VALID.replace("sso_off > 0", "sso_off > 5").replace(
        'group_by: ["@usr.email"]', 'group_by: ["@usr.email"]\n    aggregation: cardinality\n    distinct: ["@id"]')
    write_rule(tmp_path, replay_proof)
    assert run_validate(tmp_path).returncode == 0
