"""docs/rules.md is generated from the rules: it must be what `ccl docs` writes, and say what they do."""

from __future__ import annotations

import re
import subprocess

import pytest

from ccl.commands.docs import rules_page
from tests.conftest import CCL, ROOT
from tests.test_actor_matrix import RULE


@pytest.fixture(scope="module")
def generated() -> str:
    text, code = rules_page((ROOT / "detections",))
    assert code == 0 and text is not None
    return text


def test_the_committed_page_is_what_ccl_docs_writes(generated):
    committed = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert committed == generated, "docs/rules.md is stale: run `ccl docs --out docs/rules.md`"


def test_every_rule_has_a_row_with_its_reason_and_nearest_rule(generated):
    rows = {line.split("|")[1].strip(" `"): line for line in generated.splitlines() if line.startswith("| `")
            and line.count("|") == 8}
    rule_ids = sorted(path.stem for path in (ROOT / "detections").glob("*.yaml"))
    assert sorted(rows) == rule_ids
    sso = rows["sso-disabled"]
    assert "| high / medium |" in sso and "Datadog def-000-7dn (severity not published)" in sso
    assert "Panther Anthropic.Activity.SSO.Disabled (high)" in sso and "TA0005 T1556" in sso


def test_the_detections_page_states_the_figures_of_the_page(generated):
    readme = " ".join((ROOT / "docs" / "detections.md").read_text(encoding="utf-8").split())
    rules = re.search(r"^(\d+) rules\.", generated, re.M).group(1)
    named = re.search(r"\*\*(\d+) are named by a rule\*\*", generated).group(1)
    exercised = re.search(r"\*\*(\d+) are exercised by a firing test\*\*", generated).group(1)
    assert f"- Rules: **{rules}**," in readme
    assert f"**{named} are named by a rule and {exercised} are exercised by a firing test**" in readme
    assert int(named) >= 120 and int(exercised) >= 100  # the bar


def test_ccl_docs_writes_the_page_and_refuses_when_a_test_fails(tmp_path):
    (tmp_path / "detections").mkdir()
    rule = tmp_path / "detections" / "mcp.yaml"
    rule.write_text(RULE.replace('["@usr.email"]', '["@usr.identity"]'))
    out = tmp_path / "site" / "rules.md"
    done = subprocess.run([*CCL, "docs", "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "| `mcp-server-created` | threshold | medium |" in out.read_text()
    assert "**8 of 8 fire, 0 excluded**" in out.read_text()

    rule.write_text(RULE.replace('["@usr.email"]', '["@usr.identity"]').replace("expect: {signals: 1}",
                                                                                "expect: {signals: 2}"))
    out.unlink()
    failed = subprocess.run([*CCL, "docs", "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert failed.returncode == 1 and "expected 2 signal(s), got 1" in failed.stderr
    assert not out.exists()
