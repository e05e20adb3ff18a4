"""`ccl docs`: write docs/rules.md from the rules, their tests and the actor matrix."""

from __future__ import annotations

import sys
from pathlib import Path

from ccl.commands.validate import load_valid
from ccl.detection.actor_matrix import matrix
from ccl.detection.coverage import measure
from ccl.detection.rule_docs import page
from ccl.detection.rule_tests import run_rule_tests
from ccl.detection.rules import build_rule
from ccl.vector.normalize import Normalizer


def rules_page(paths: tuple[Path, ...]) -> tuple[str | None, int]:
    """The page's text, or None and an exit code when the rules do not validate or a test fails."""
    assets, code = load_valid(paths)
    if code:
        return None, code
    rules = [build_rule(asset) for asset in assets if asset.kind == "rule"]
    if not rules:
        print("no rules found: run from the repository root, or name detections/", file=sys.stderr)
        return None, 2
    normalizer = Normalizer()
    outcomes = [outcome for rule in rules for outcome in run_rule_tests(rule, normalizer)]
    failed = [outcome for outcome in outcomes if not outcome.passed]
    if failed:
        for outcome in failed:
            print(f"{outcome.rule}: {outcome.name}: {outcome.detail}", file=sys.stderr)
        print(f"{len(failed)} rule test(s) fail; fix them (ccl test) before writing the docs", file=sys.stderr)
        return None, 1
    rows = matrix(rules, normalizer)
    return page(rules, measure(rules, outcomes, rows), rows), 0


def run_docs(paths: tuple[Path, ...], out: Path) -> int:
    text, code = rules_page(paths or (Path("detections"),))
    if text is None:
        return code
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        unchanged = out.exists() and out.read_text(encoding="utf-8") == text
        if not unchanged:
            out.write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"error: cannot write {out}: {error.strerror}", file=sys.stderr)
        return 1
    print(f"{out}: {'unchanged' if unchanged else 'written'} ({text.count(chr(10))} lines)")
    return 0
