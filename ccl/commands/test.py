"""`ccl test`: every rule's embedded tests, a table, a summary, and optionally coverage."""

from __future__ import annotations

from pathlib import Path

from ccl.actor_matrix import RuleRow, describe, matrix, table, totals
from ccl.commands.validate import load_valid
from ccl.coverage import SECURITY_CATEGORIES, Coverage, measure
from ccl.geoip import GeoIpError
from ccl.normalize import Normalizer
from ccl.pipeline_tests import run_pipeline_tests
from ccl.rules import Rule, build_rule
from ccl.testing import TestOutcome, run_rule_tests


def run_test(paths: tuple[Path, ...], coverage: bool, geoip_db: Path | None) -> int:
    assets, code = load_valid(paths)
    if code:
        return code
    rules = [build_rule(asset) for asset in assets if asset.kind == "rule"]
    try:
        normalizer = Normalizer(geoip_db)
    except GeoIpError as error:
        print(f"error: {error}")
        return 2
    outcomes = [outcome for asset in assets if asset.kind == "pipeline"
                for outcome in run_pipeline_tests(asset, normalizer)]
    outcomes += [outcome for rule in rules for outcome in run_rule_tests(rule, normalizer)]
    rows = matrix(rules, normalizer)
    outcomes += [TestOutcome(row.rule.id, "actor matrix: fires for every actor kind its types allow",
                             not row.problems(), describe(row)) for row in rows]
    width = max((len(o.rule) for o in outcomes), default=4)
    print(f"{'asset':<{width}}  result  test")
    for outcome in outcomes:
        print(f"{outcome.rule:<{width}}  {'ok' if outcome.passed else 'FAIL':<6}  {outcome.name}")
        if not outcome.passed:
            print(f"{'':<{width}}          {outcome.detail}")
    failed = [o for o in outcomes if not o.passed]
    pipelines = sum(asset.kind == "pipeline" for asset in assets)
    print(f"\n{_count(pipelines, 'pipeline')}, {_count(len(rules), 'rule')}, {_count(len(outcomes), 'test')}: "
          f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    if coverage:
        print_coverage(measure(rules, outcomes, rows))
        print_actor_matrix(rules, rows)
    return 1 if failed else 0


def print_actor_matrix(rules: list[Rule], rows: list[RuleRow]) -> None:
    counts = totals(rows)
    print(f"\nactor matrix ({len(rows)} rules that fire on one event or a burst of one kind; each activity type they "
          "watch x each actor kind the catalog allows for it):")
    print(f"  {counts['fires']} fire, {counts['excluded']} excluded with a reason, of {counts['total']}")
    print("  ok: fires for every type; ex: excluded (excludes_actors); NO: silent for some type; -: no type allows it")
    for line in table(rows):
        print(line)
    others = sorted(rule.id for rule in rules if rule.id not in {row.rule.id for row in rows})
    print(f"  not in the matrix (they need history or several kinds of event; their own tests cover the actors): "
          f"{', '.join(others) or '-'}")


def print_coverage(found: Coverage) -> None:
    relevant = found.relevant
    print(f"\ncoverage of {len(relevant)} security-relevant activity types "
          f"(categories: {', '.join(sorted(SECURITY_CATEGORIES))}):")
    print(f"  {len(found.relevant_named)} are named by a rule; {len(found.relevant_exercised)} of those are exercised "
          "by a firing test (a signal of the rule's own test carries an activity of that type; actor-matrix cells "
          "are not counted)")
    untested, matrix_only = found.relevant_untested, found.matrix_only
    print(f"  {len(untested)} have a rule but no firing test: {', '.join(untested) or '-'}")
    print(f"    of which an actor-matrix cell makes {len(matrix_only)} fire: {', '.join(matrix_only) or '-'}")
    print(f"  {len(found.relevant_uncovered)} have no rule:")
    for start in range(0, len(found.relevant_uncovered), 4):
        print("    " + "  ".join(found.relevant_uncovered[start:start + 4]))
    print(f"  rules also name {len(found.outside_named)} types outside these categories")


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
