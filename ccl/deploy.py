"""Plan and apply: what differs between the YAML assets and the Datadog org, and making it so.

Ownership: an object is ours only if it carries the key of its file (rules and monitors a
`ccl:<id>` tag, pipelines and dashboards a `[managed by ccl: <id>]` marker in the description).
Anything else is never updated or deleted, even with the same name.

Diffs compare our rendered payload with the remote object projected onto the fields we send:
server-side fields (ids, authors, timestamps, versions) and server defaults do not exist in our
payload, so they never show up as changes, and an unchanged file plans `noop`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccl.assets import Asset
from ccl.datadog.client import DatadogClient, DatadogError
from ccl.datadog.resources import (
    KINDS,
    Dashboards,
    Kind,
    Rules,
    is_default_on_our_source,
    is_integration_pipeline_for_our_source,
)
from ccl.render import render

ORDER = ["pipeline", "dashboard", "monitor", "rule"]


@dataclass
class Change:
    kind: str
    key: str
    action: str  # create, update, delete, noop
    title: str
    remote_id: str | None = None
    diff: list[str] = field(default_factory=list)
    payload: dict[str, Any] | None = None
    source: Path | None = None
    disables_default: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "action": self.action, "remote_id": self.remote_id}


@dataclass
class Plan:
    base_url: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(change.action == action for change in self.changes)


def diff(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Differences between our payload and the remote one, on the fields our payload has."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [f"{path or '(object)'}: {_show(theirs)} -> {_show(ours)}"]
        found = []
        for key, value in ours.items():
            child = f"{path}.{key}" if path else key
            if key not in theirs:
                found.append(f"{child}: (absent) -> {_show(value)}")
            else:
                found += diff(value, theirs[key], child)
        return found
    if isinstance(ours, list):
        if not isinstance(theirs, list):
            return [f"{path}: {_show(theirs)} -> {_show(ours)}"]
        found = []
        for index in range(max(len(ours), len(theirs))):
            child = f"{path}[{index}]"
            if index >= len(ours):
                found.append(f"{child}: {_show(theirs[index])} -> (removed)")
            elif index >= len(theirs):
                found.append(f"{child}: (absent) -> {_show(ours[index])}")
            else:
                found += diff(ours[index], theirs[index], child)
        return found
    if ours != theirs and not (_number(ours) and _number(theirs) and float(ours) == float(theirs)):
        return [f"{path}: {_show(theirs)} -> {_show(ours)}"]
    return []


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 70 else text[:67] + "..."


def build_plan(assets: list[Asset], client: DatadogClient, kinds: list[str], prune: bool,
               disable_defaults: bool) -> Plan:
    plan = Plan(client.base_url)
    for kind in [k for k in ORDER if k in kinds]:
        resource = KINDS[kind](client)
        remote = resource.list_remote()
        _plan_kind(plan, resource, remote, [a for a in assets if a.kind == kind], prune)
        if kind == "pipeline":
            _note_integration_pipeline(plan, remote)
        if kind == "rule":
            _plan_defaults(plan, remote, [a for a in assets if a.kind == "rule"], disable_defaults)
    return plan


def _plan_kind(plan: Plan, resource: Kind, remote: list[dict[str, Any]], local: list[Asset], prune: bool) -> None:
    owned: dict[str, dict[str, Any]] = {}
    for item in remote:
        key = resource.owner_key(item)
        if key is None:
            continue
        if key in owned:
            plan.notes.append(f"two {resource.label} carry the key {key!r} ({resource.remote_id(owned[key])} and "
                              f"{resource.remote_id(item)}); only the first is managed, delete the other by hand")
            continue
        owned[key] = item
    for asset in sorted(local, key=lambda a: a.id):
        payload = render(asset)
        title = resource.title(payload)
        existing = owned.get(asset.id)
        if existing is not None:
            remote_id = resource.remote_id(existing)
            if isinstance(resource, Dashboards):
                existing = resource.full(remote_id)
            changes = diff(payload, resource.comparable_remote(existing, payload))
            plan.changes.append(Change(resource.name, asset.id, "update" if changes else "noop", title, remote_id,
                                       changes, payload, asset.path))
            continue
        for item in remote:
            if resource.title(item) == title and resource.owner_key(item) is None:
                plan.notes.append(f"an unmanaged {resource.name} named {title!r} already exists (id "
                                  f"{resource.remote_id(item)}): ccl leaves it alone and creates its own")
        plan.changes.append(Change(resource.name, asset.id, "create", title, None, [], payload, asset.path))
    local_keys = {asset.id for asset in local}
    stale = [(key, item) for key, item in owned.items() if key not in local_keys]
    for key, item in sorted(stale, key=lambda pair: pair[0]):
        if prune:
            plan.changes.append(Change(resource.name, key, "delete", resource.title(item), resource.remote_id(item)))
    if stale and not prune:
        label = resource.name if len(stale) == 1 else resource.label
        plan.notes.append(f"{len(stale)} managed {label} no longer in the repository "
                          f"({', '.join(sorted(key for key, _ in stale))}): --prune deletes them")


def _note_integration_pipeline(plan: Plan, remote: list[dict[str, Any]]) -> None:
    for item in remote:
        if is_integration_pipeline_for_our_source(item):
            plan.notes.append(
                f"Datadog's integration pipeline {item.get('name')!r} (read-only, id {item.get('id')}) also processes "
                "source:claude-compliance-logs. Pipelines run in order and both set the same attributes, so the "
                "result is the same; disable one of them in Logs > Pipelines to save processing, ccl never "
                "touches it.")


def _plan_defaults(plan: Plan, remote: list[dict[str, Any]], local: list[Asset], disable: bool) -> None:
    ours_by_default: dict[str, list[str]] = {}
    for asset in local:
        for default_id in asset.data.get("overlaps_default", []):
            ours_by_default.setdefault(default_id, []).append(asset.id)
    defaults = [item for item in remote if is_default_on_our_source(item)]
    overlapping = [item for item in defaults if str(item.get("id")) in ours_by_default]
    for item in overlapping:
        rule_id = str(item["id"])
        enabled = bool(item.get("isEnabled", True))
        ours = ", ".join(ours_by_default[rule_id])
        if disable and enabled:
            plan.changes.append(Change("rule", rule_id, "update", str(item.get("name")), rule_id,
                                       ["isEnabled: true -> false"], {"isEnabled": False}, disables_default=True))
        else:
            state = "enabled" if enabled else "already disabled"
            plan.notes.append(f"Datadog default rule {rule_id} {item.get('name')!r} ({state}) has the strategy of "
                              f"ours: {ours}" + (" -- --disable-overlapping-defaults disables it (default rules "
                                                 "cannot be deleted)" if enabled else ""))


@dataclass
class Outcome:
    applied: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)
    refused: bool = False  # a 401 or 403 stopped the run


def apply(plan: Plan, client: DatadogClient) -> Outcome:
    outcome = Outcome()
    pending = [c for c in plan.changes if c.action in ("create", "update")] + \
              [c for c in plan.changes if c.action == "delete"]
    for index, change in enumerate(pending):
        label = f"{change.action} {change.kind} {change.key}"
        resource = KINDS[change.kind](client)
        try:
            remote_id = _apply_one(change, resource)
        except DatadogError as error:
            if isinstance(resource, Rules) and error.status == 400 and change.source is not None:
                outcome.failed.append(f"{label}: {change.source}: Datadog refused the rule: {error}")
                continue
            outcome.failed.append(f"{label}: {error}")
            if error.status in (401, 403):
                outcome.refused = True
                outcome.not_attempted = [f"{c.action} {c.kind} {c.key}" for c in pending[index + 1:]]
                break
            continue
        outcome.applied.append(f"{label}" + (f" (id {remote_id})" if remote_id else ""))
    return outcome


def _apply_one(change: Change, resource: Kind) -> str | None:
    if change.disables_default and isinstance(resource, Rules):
        resource.disable(str(change.remote_id))
        return change.remote_id
    if change.action == "delete":
        resource.delete(str(change.remote_id))
        return change.remote_id
    assert change.payload is not None
    if isinstance(resource, Rules):
        resource.validate(change.payload)  # a 400 here leaves the rule as it is in Datadog
    if change.action == "create":
        return resource.create(change.payload)
    resource.update(str(change.remote_id), change.payload)
    return change.remote_id


def render_plan(plan: Plan, verbose: bool = False) -> str:
    symbols = {"create": "+", "update": "~", "delete": "-", "noop": "="}
    lines = [f"Plan against {plan.base_url}: {plan.count('create')} to create, {plan.count('update')} to update, "
             f"{plan.count('delete')} to delete, {plan.count('noop')} unchanged"]
    for change in plan.changes:
        if change.action == "noop" and not verbose:
            continue
        where = f" (id {change.remote_id})" if change.remote_id else ""
        lines.append(f"  {symbols[change.action]} {change.action:<7} {change.kind:<10} {change.key + where:<40} "
                     f"{change.title}")
        lines.extend(f"        {line}" for line in change.diff[:20])
        if len(change.diff) > 20:
            lines.append(f"        ... and {len(change.diff) - 20} more differences")
    if plan.notes:
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in plan.notes)
    return "\n".join(lines)


def render_outcome(outcome: Outcome) -> str:
    lines = []
    for title, items in (("applied", outcome.applied), ("FAILED", outcome.failed),
                         ("not attempted", outcome.not_attempted)):
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines.extend(f"  {item}" for item in items)
    if outcome.failed or outcome.not_attempted:
        lines.append("Fix the cause and run the same command again: it completes what is missing.")
    elif not outcome.applied:
        lines.append("nothing to do")
    return "\n".join(lines)
