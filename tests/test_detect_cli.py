"""`ccl test` and `ccl detect` as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import CCL, ROOT, collector_command, collector_env


def run(*args: str, cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CCL, *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=False)


def test_every_rule_of_the_repository_passes_its_tests():
    done = run("test")
    assert done.returncode == 0, done.stdout
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.endswith("0 failed")


def test_a_rule_whose_test_is_wrong_fails_with_exit_1(tmp_path):
    shutil.copytree(ROOT / "detections", tmp_path / "detections")
    path = tmp_path / "detections" / "compliance-logging-disabled.yaml"
    path.write_text(path.read_text().replace("expect: {signals: 0}", "expect: {signals: 0}\n  - name: wrong on purpose"
                                             "\n    events:\n      - activity: {type: org_compliance_api_settings_"
                                             "updated, compliance_api_enabled: false}\n    expect: {signals: 0}"))
    done = run("test", cwd=tmp_path)
    assert done.returncode == 1
    assert "FAIL    wrong on purpose" in done.stdout and "expected 0 signal(s), got 1" in done.stdout


def test_coverage_lists_security_types_with_and_without_rules():
    done = run("test", "--coverage")
    assert "security-relevant activity types" in done.stdout
    assert "have a rule and a test that fires" in done.stdout and "have no rule:" in done.stdout


def test_detect_finds_the_simulators_attack_stories(make_simulator, tmp_path):
    simulator = make_simulator(seed=21, rate=0.3, history=3 * 3600, scenarios=["sso-brute-force", "compliance-off",
                                                                                "impossible-travel",
                                                                                "admin-key-churn"])
    activities = tmp_path / "activities.ndjson"
    with activities.open("wb") as out:
        subprocess.run(collector_command("--once", "--since", "4h", "--state-dir", str(tmp_path / "state")),
                       env=collector_env(simulator.url), stdout=out, stderr=subprocess.DEVNULL, check=True, cwd=ROOT)
    done = run("detect", "--events", str(activities))
    assert done.returncode == 0, done.stderr
    signals = [json.loads(line) for line in done.stdout.splitlines()]
    fired = {signal["rule"] for signal in signals}
    assert {"sso-brute-force-then-success", "compliance-logging-disabled"} <= fired
    brute = next(s for s in signals if s["rule"] == "sso-brute-force-then-success")
    assert brute["severity"] == "high" and brute["count"] >= 16  # 15 failures and the success (at least)
    assert set(brute) == {"rule", "severity", "group", "first_seen", "last_seen", "count", "activity_ids"}


def test_detect_reports_unusable_input_without_a_traceback(tmp_path):
    source = tmp_path / "events.ndjson"
    source.write_text('{"type": "org_sso_toggled", "created_at": "2026-03-02T09:00:00Z", "enabled": false}\nnot json\n')
    done = run("detect", "--events", str(source))
    assert done.returncode == 2 and f"{source}:2: not JSON" in done.stderr and "Traceback" not in done.stderr
    missing = run("detect", "--events", str(tmp_path / "none.ndjson"))
    assert missing.returncode == 2 and "none.ndjson" in missing.stderr


def test_detect_gives_the_same_signals_on_raw_and_on_normalized_events(make_simulator, tmp_path):
    simulator = make_simulator(seed=22, rate=0.5, history=2 * 3600, scenarios=["sso-brute-force", "compliance-off"])
    raw = tmp_path / "raw.ndjson"
    with raw.open("wb") as out:
        subprocess.run(collector_command("--once", "--since", "3h", "--state-dir", str(tmp_path / "state")),
                       env=collector_env(simulator.url), stdout=out, stderr=subprocess.DEVNULL, check=True, cwd=ROOT)
    normalized = tmp_path / "normalized.ndjson"
    normalized.write_text(run("normalize", str(raw)).stdout)
    from_raw, from_normalized = run("detect", "--events", str(raw)), run("detect", "--events", str(normalized))
    assert from_raw.stdout and from_raw.stdout == from_normalized.stdout
    assert "no rule can match" in from_normalized.stderr
