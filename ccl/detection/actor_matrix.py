"""The actor matrix: does a rule fire whoever the actor is, as the API sends it?

For every threshold rule one of whose queries can raise a signal on its own (one event, or a burst
of the same event), for every activity type that query watches and every actor kind the catalog
allows for that type (every documented kind where it lists none), the rule's own firing test event
is replayed with that type, an actor of that kind and the organization the API sends for the type
(null for sign-in, sign-out and Compliance API calls). Each must fire, unless the rule lists the
kind under `excludes_actors` with a reason; a listed kind that fires anyway is reported too, so
the list stays true. `ccl test` runs it; `ccl validate` warns earlier, from the same cells, when a
group-by attribute is missing on an allowed kind.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ccl.content.actors import example_actor
from ccl.content.attributes import DATADOG_ENRICHMENT
from ccl.content.catalog import ACTOR_KINDS, activity_types, allowed_actor_kinds
from ccl.detection.engine import Engine
from ccl.detection.query import event_names
from ccl.detection.rule_tests import TEST_START, build_events, enabled_copy, merge, test_activity
from ccl.detection.rules import Rule, RuleQuery
from ccl.detection.signals import group_key
from ccl.vector.normalize import Normalizer

MAX_BURST = 500  # a query that needs more events than this to fire is not a single-event query
SHORT = {"user_actor": "user", "api_actor": "api", "admin_api_key_actor": "admin_key",
         "unauthenticated_user_actor": "unauth", "anthropic_actor": "anthropic", "system_actor": "system",
         "scim_directory_sync_actor": "scim", "service_account_actor": "svc_acct",
         "federated_identity_actor": "fed_ident", "federated_actor": "federated",
         "attested_device_actor": "device"}


@dataclass
class Cell:
    rule: str
    activity_type: str
    kind: str
    state: str  # fires, excluded, silent, excluded but fires, no test to replay


@dataclass
class RuleRow:
    rule: Rule
    burst: int  # events of one kind needed to fire (1: a single event)
    cells: list[Cell] = field(default_factory=list)

    def problems(self) -> list[Cell]:
        return [cell for cell in self.cells if cell.state not in ("fires", "excluded")]


def watched_types(query: RuleQuery) -> list[str]:
    """The documented activity types a query can match (wildcards expanded)."""
    found: set[str] = set()
    for name, is_pattern in event_names(query.node):
        if is_pattern:
            regex = re.compile(re.escape(name).replace(r"\*", ".*").replace(r"\?", "."))
            found |= {known for known in activity_types() if regex.fullmatch(known)}
        elif name in activity_types():
            found.add(name)
    return sorted(found)


def single_query_bursts(rule: Rule) -> list[tuple[int, int]]:
    """(query index, events needed) for each query whose events alone make a case hold."""
    if rule.method != "threshold":
        return []
    found = []
    for index, query in enumerate(rule.queries):
        if query.aggregation not in ("count", "cardinality"):
            continue
        for count in range(1, MAX_BURST + 1):
            values = {other.name: float(count if other is query else 0) for other in rule.queries}
            if any(case.holds is not None and case.holds(values) for case in rule.cases):
                found.append((index, count))
                break
    return found


def _templates(rule: Rule, query: RuleQuery, normalizer: Normalizer) -> list[dict[str, Any]]:
    """Event specs of the rule's firing tests that this query matches."""
    specs = []
    for test in rule.tests:
        if test["expect"]["signals"] <= 0:
            continue
        for spec in test["events"]:
            event = normalizer.normalize(test_activity(spec["activity"], TEST_START, "activity_template"))
            merge(event, spec.get("add") or {})
            if query.matches(event):
                specs.append(spec)
    return specs


def _replayed(template: dict[str, Any], activity_type: str, kind: str, burst: int, window: float) -> dict[str, Any]:
    activity = {key: copy.deepcopy(value) for key, value in template["activity"].items()
                if key not in ("id", "actor", "organization_id", "organization_uuid")}
    activity.update(type=activity_type, actor=example_actor(kind))
    every = min(1.0, window / burst) if window else 1.0  # the whole burst inside one evaluation window
    return {"activity": activity, "add": template.get("add") or {}, "repeat": burst, "every": f"{every:g}s"}


def rule_row(rule: Rule, normalizer: Normalizer) -> RuleRow | None:
    bursts = single_query_bursts(rule)
    if not bursts:
        return None
    row = RuleRow(rule, min(count for _, count in bursts))
    seen: set[tuple[str, str]] = set()
    for index, burst in bursts:
        query = rule.queries[index]
        templates = _templates(rule, query, normalizer)
        for activity_type in watched_types(query):
            for kind in allowed_actor_kinds(activity_type):
                if (activity_type, kind) in seen:
                    continue
                seen.add((activity_type, kind))
                row.cells.append(Cell(rule.id, activity_type, kind,
                                      _state(rule, templates, activity_type, kind, burst, normalizer)))
    return row


def _state(rule: Rule, templates: list[dict[str, Any]], activity_type: str, kind: str, burst: int,
           normalizer: Normalizer) -> str:
    if not templates:
        return "no test to replay"
    template = next((t for t in templates if t["activity"].get("type") == activity_type), templates[0])
    spec = _replayed(template, activity_type, kind, burst, rule.evaluation_window)
    events = build_events(f"{rule.id}-matrix", {"events": [spec]}, normalizer)
    fires = bool(Engine([enabled_copy(rule)]).run(events))
    if kind in rule.excludes_actors:
        return "excluded but fires" if fires else "excluded"
    return "fires" if fires else "silent"


def matrix(rules: list[Rule], normalizer: Normalizer) -> list[RuleRow]:
    return [row for rule in rules if (row := rule_row(rule, normalizer)) is not None]


def totals(rows: list[RuleRow]) -> dict[str, int]:
    cells = [cell for row in rows for cell in row.cells]
    return {"fires": sum(c.state == "fires" for c in cells), "excluded": sum(c.state == "excluded" for c in cells),
            "total": len(cells)}


def describe(row: RuleRow) -> str:
    """One line for `ccl test`: what failed, or what passed."""
    problems = row.problems()
    if problems:
        shown = "; ".join(f"{c.activity_type} by {c.kind}: {c.state}" for c in problems[:6])
        more = f" (and {len(problems) - 6} more)" if len(problems) > 6 else ""
        return (f"{shown}{more}. Group by an attribute every actor has (@usr.identity), or list the kind "
                "under excludes_actors with a reason")
    counts = totals([row])
    return f"{counts['fires']} fire, {counts['excluded']} excluded"


def table(rows: list[RuleRow], markdown: bool = False) -> list[str]:
    """Rules x actor kinds: ok (every watched type fires), ex (excluded), NO (some stay silent), - (not allowed)."""
    kinds = [kind for kind in ACTOR_KINDS if any(c.kind == kind for row in rows for c in row.cells)]
    width = max((len(row.rule.id) for row in rows), default=4)
    header = ["rule", *(SHORT[kind] for kind in kinds)]
    lines = []
    if markdown:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    else:
        lines.append(f"  {'rule':<{width}}  " + " ".join(f"{SHORT[kind]:>9}" for kind in kinds))
    for row in rows:
        marks = [_mark([c for c in row.cells if c.kind == kind]) for kind in kinds]
        if markdown:
            lines.append(f"| `{row.rule.id}` | " + " | ".join(marks) + " |")
        else:
            lines.append(f"  {row.rule.id:<{width}}  " + " ".join(f"{mark:>9}" for mark in marks))
    return lines


def _mark(cells: list[Cell]) -> str:
    if not cells:
        return "-"
    states = {cell.state for cell in cells}
    if states <= {"fires"}:
        return "ok"
    if states <= {"excluded"}:
        return "ex"
    if states <= {"fires", "excluded"}:
        return "ok/ex"
    return "NO"


# -- the same cells, statically, for `ccl validate` --------------------------------------------

@cache
def _catalog_event(activity_type: str, kind: str) -> dict[str, Any]:
    """A normalized activity of this type by an actor of this kind, every documented field filled."""
    entry = activity_types().get(activity_type) or {}
    spec: dict[str, Any] = {"type": activity_type, "actor": example_actor(kind)}
    spec.update({name: f"example_{name}" for name in entry.get("fields", [])})
    return _normalizer().normalize(test_activity(spec, TEST_START, "activity_catalog_example"))


@cache
def _normalizer() -> Normalizer:
    return Normalizer()


def _added_downstream(attribute: str) -> bool:
    """GeoIP and threat intelligence come from Vector's or Datadog's enrichment, not the activity."""
    path = attribute.removeprefix("@")
    return any(path == prefix or path.startswith(prefix + ".")
               for prefix in ("network.client.geoip", *DATADOG_ENRICHMENT))


def group_by_gaps(rule: Rule) -> list[tuple[int, str, list[tuple[str, str]]]]:
    """(query index, attribute, [(type, kind)]) where an allowed, not excluded kind lacks a group-by
    attribute (or a new value rule's metric), so the rule would never see that actor."""
    gaps = []
    for index, query in enumerate(rule.queries):
        attributes = list(query.group_by) + ([query.metric] if rule.method == "new_value" and query.metric else [])
        for attribute in attributes:
            if _added_downstream(attribute):
                continue
            missing = [(activity_type, kind) for activity_type in watched_types(query)
                       for kind in allowed_actor_kinds(activity_type) if kind not in rule.excludes_actors
                       and group_key(_catalog_event(activity_type, kind), [attribute]) is None]
            if missing:
                gaps.append((index, attribute, missing))
    return gaps
