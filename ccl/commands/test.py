"""`ccl test`: every rule's embedded tests, a table, a summary, and optionally coverage."""

from __future__ import annotations

from pathlib import Path

from ccl.commands.validate import load_valid
from ccl.content.catalog import activity_types
from ccl.datadog.pipeline_tests import run_pipeline_tests
from ccl.detection.actor_matrix import RuleRow, describe, matrix, table, totals
from ccl.detection.query import event_names
from ccl.detection.query.match import wildcard_matcher
from ccl.detection.rule_tests import TestOutcome, run_rule_tests
from ccl.detection.rules import Rule, build_rule
from ccl.vector.geoip import GeoIpError
from ccl.vector.normalize import Normalizer

# Categories of the catalog whose activities matter to a security team.
SECURITY_CATEGORIES = {
    "authentication", "org_sso", "sso_config", "org_settings", "api_key", "admin_api_key", "org_user", "org_invite",
    "org_membership", "rbac_role", "rbac_group", "scim", "scim_directory_sync", "compliance_api", "org_network",
    "org_domain", "org_cmek", "platform_service_account", "platform_federation", "data_export", "mcp",
    "integration", "platform_signing_key", "platform_spend_limit", "org_admin", "org_admin_request", "account",
}


def run_test(paths: tuple[Path, ...], coverage: bool, geoip_db: Path | None) -> int:
    assets, code = load_valid(paths, so="no test was run")
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
        print_coverage(rules)
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


def covered_types(rules: list[Rule]) -> tuple[set[str], set[str]]:
    """(types some rule's query names, types some rule's tests exercise)."""
    catalog = list(activity_types())
    in_rules: set[str] = set()
    for rule in rules:
        for query in rule.queries:
            for name, is_pattern in event_names(query.node):
                if is_pattern:
                    matches = wildcard_matcher(name)
                    in_rules |= {t for t in catalog if matches(t)}
                else:
                    in_rules.add(name)
    in_tests = {event["activity"]["type"] for rule in rules for test in rule.tests for event in test["events"]
                if test["expect"]["signals"] > 0}
    return in_rules, in_tests


def print_coverage(rules: list[Rule]) -> None:
    relevant = sorted(t for t, entry in activity_types().items() if entry.get("category") in SECURITY_CATEGORIES)
    in_rules, in_tests = covered_types(rules)
    tested = [t for t in relevant if t in in_rules and t in in_tests]
    untested = [t for t in relevant if t in in_rules and t not in in_tests]
    uncovered = [t for t in relevant if t not in in_rules]
    print(f"\ncoverage of {len(relevant)} security-relevant activity types "
          f"(categories: {', '.join(sorted(SECURITY_CATEGORIES))}):")
    print(f"  {len(tested)} have a rule and a test that fires ({100 * len(tested) // max(len(relevant), 1)}%)")
    print(f"  {len(untested)} have a rule but no firing test: {', '.join(untested) or '-'}")
    print(f"  {len(uncovered)} have no rule:")
    for start in range(0, len(uncovered), 4):
        print("    " + "  ".join(uncovered[start:start + 4]))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
