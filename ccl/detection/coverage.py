"""Which security-relevant activity types the rules name, and which their own firing tests exercise.

A type counts as *exercised* only when a rule's own test raises a signal that carries an activity of
that type: listing the type in a test that fires on something else does not count. The actor matrix
(ccl/detection/actor_matrix.py) replays firing events with every allowed actor kind; the types it makes fire
are reported apart and are not counted as exercised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ccl.content.catalog import activity_types
from ccl.detection.actor_matrix import RuleRow
from ccl.detection.query import event_names
from ccl.detection.query.match import wildcard_matcher
from ccl.detection.rule_tests import TestOutcome
from ccl.detection.rules import Rule

# Categories of the catalog whose activities matter to a security team (the denominator of the
# coverage figures; unchanged since the figures were first published, so they stay comparable).
SECURITY_CATEGORIES = frozenset({
    "authentication", "org_sso", "sso_config", "org_settings", "api_key", "admin_api_key", "org_user", "org_invite",
    "org_membership", "rbac_role", "rbac_group", "scim", "scim_directory_sync", "compliance_api", "org_network",
    "org_domain", "org_cmek", "platform_service_account", "platform_federation", "data_export", "mcp",
    "integration", "platform_signing_key", "platform_spend_limit", "org_admin", "org_admin_request", "account",
})


@dataclass
class Coverage:
    relevant: list[str]  # the security-relevant types, sorted
    named: set[str] = field(default_factory=set)  # every documented type some rule's query can match
    exercised: set[str] = field(default_factory=set)  # carried by a signal of a rule's own firing test
    matrix_fires: set[str] = field(default_factory=set)  # made to fire by an actor-matrix cell

    @property
    def relevant_named(self) -> list[str]:
        return [t for t in self.relevant if t in self.named]

    @property
    def relevant_exercised(self) -> list[str]:
        return [t for t in self.relevant if t in self.named and t in self.exercised]

    @property
    def relevant_untested(self) -> list[str]:
        return [t for t in self.relevant if t in self.named and t not in self.exercised]

    @property
    def relevant_uncovered(self) -> list[str]:
        return [t for t in self.relevant if t not in self.named]

    @property
    def matrix_only(self) -> list[str]:
        """Named types no rule test exercises but an actor-matrix cell makes fire."""
        return [t for t in self.relevant_untested if t in self.matrix_fires]

    @property
    def outside_named(self) -> list[str]:
        """Types rules name in categories outside the security-relevant list."""
        relevant = set(self.relevant)
        return sorted(t for t in self.named if t not in relevant)


def named_types(rules: list[Rule]) -> set[str]:
    """Documented types some query of some rule can match (wildcards expanded)."""
    catalog = list(activity_types())
    found: set[str] = set()
    for rule in rules:
        for query in rule.queries:
            for name, is_pattern in event_names(query.node):
                if is_pattern:
                    matches = wildcard_matcher(name)
                    found |= {t for t in catalog if matches(t)}
                elif name in activity_types():
                    found.add(name)
    return found


def measure(rules: list[Rule], outcomes: list[TestOutcome], rows: list[RuleRow]) -> Coverage:
    relevant = sorted(t for t, entry in activity_types().items() if entry.get("category") in SECURITY_CATEGORIES)
    exercised = {t for outcome in outcomes if outcome.passed and outcome.signals for t in outcome.fired_types}
    matrix_fires = {cell.activity_type for row in rows for cell in row.cells if cell.state == "fires"}
    return Coverage(relevant, named_types(rules), exercised, matrix_fires)
