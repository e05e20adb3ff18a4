"""Plan: what differs between the YAML assets and the Datadog org, and why.

Ownership is exact (ccl/datadog/ownership.py): the key of a file in a fixed place, never a
substring; an object that only resembles ours is reported and never touched. Several objects with
the key of one file (two deploys that ran at once) are duplicates: the oldest is the one managed,
and `--prune` deletes the others when they hold exactly what the file renders.

Diffs compare our rendered payload with the remote object projected onto the fields we send:
server-side fields (ids, authors, timestamps, versions) and server defaults do not exist in our
payload, so they never show up as changes, and an unchanged file plans `noop`. Applying a plan is
ccl/datadog/apply.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccl.content.assets import Asset
from ccl.datadog.client import DatadogClient
from ccl.datadog.ownership import age_seconds
from ccl.datadog.render import render
from ccl.datadog.resources import KINDS, Kind, is_default_on_our_source, is_integration_pipeline_for_our_source

ORDER = ["pipeline", "dashboard", "monitor", "rule"]


@dataclass
class Change:
    kind: str
    key: str
    action: str  # create, update, delete, noop; disable (a Datadog default rule, which cannot be deleted)
    title: str
    remote_id: str | None = None
    diff: list[str] = field(default_factory=list)
    payload: dict[str, Any] | None = None
    source: Path | None = None
    disables_default: bool = False
    reason: str = ""  # why a delete: its file is gone, or it duplicates the object ccl manages

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "action": self.action, "remote_id": self.remote_id}


@dataclass
class Plan:
    base_url: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    local_keys: dict[str, set[str]] = field(default_factory=dict)  # kind -> ids of its files here
    newest: dict[str, Any] = field(default_factory=dict)  # kind -> creation time of its newest object seen

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
        plan.newest[kind] = newest_created(resource, remote)
        _plan_kind(plan, resource, remote, [a for a in assets if a.kind == kind], prune)
        if kind == "pipeline":
            _note_integration_pipeline(plan, remote)
        if kind == "rule":
            _plan_defaults(plan, remote, [a for a in assets if a.kind == "rule"], disable_defaults)
    return plan


def _plan_kind(plan: Plan, resource: Kind, remote: list[dict[str, Any]], local: list[Asset], prune: bool) -> None:
    local_keys = {asset.id for asset in local}
    plan.local_keys[resource.name] = local_keys
    ownership = resource.ownership(remote, local_keys)
    if ownership.lookalikes:
        count = len(ownership.lookalikes)
        what = f"{resource.name} looks" if count == 1 else f"{resource.label} look"
        plan.notes.append(f"{count} {what} like ccl's but not ccl's own, so ccl never changes or deletes "
                          f"{'it' if count == 1 else 'them'}: {'; '.join(ownership.lookalikes)}")
    owned_ids = {id(item) for items in ownership.owned.values() for item in items}
    for asset in sorted(local, key=lambda a: a.id):
        payload = render(asset)
        title = resource.title(payload)
        copies = ownership.owned.get(asset.id, [])
        if copies:
            kept, *duplicates = copies
            remote_id = resource.remote_id(kept)
            changes = differences(resource, kept, payload)
            plan.changes.append(Change(resource.name, asset.id, "update" if changes else "noop", title, remote_id,
                                       changes, payload, asset.path))
            _plan_duplicates(plan, resource, asset.id, payload, remote_id, duplicates, prune)
            continue
        for item in remote:
            if resource.title(item) == title and id(item) not in owned_ids:
                plan.notes.append(f"an unmanaged {resource.name} named {title!r} already exists (id "
                                  f"{resource.remote_id(item)}): ccl leaves it alone and creates its own")
        plan.changes.append(Change(resource.name, asset.id, "create", title, None, [], payload, asset.path))
    stale = sorted((key, items) for key, items in ownership.owned.items() if key not in local_keys)
    for key, items in stale:
        if prune:
            plan.changes.extend(Change(resource.name, key, "delete", resource.title(item), resource.remote_id(item),
                                       reason="its file is gone") for item in items)
    if stale and not prune:
        label = resource.name if len(stale) == 1 else resource.label
        plan.notes.append(f"{len(stale)} managed {label} no longer in the repository "
                          f"({', '.join(key for key, _ in stale)}): --prune deletes them")


def newest_created(resource: Kind, remote: list[dict[str, Any]], since: Any = None) -> Any:
    """The latest creation time among `remote` and `since` (None when none is known)."""
    times = [value for value in [since, *(resource.created(item) for item in remote)]
             if age_seconds(value) != float("inf")]
    return max(times, key=age_seconds, default=None)


def differences(resource: Kind, remote: dict[str, Any], payload: dict[str, Any]) -> list[str]:
    """What applying `payload` would change in `remote`, on the fields ccl sends."""
    return diff(payload, resource.comparable_remote(resource.complete(remote), payload))


def _plan_duplicates(plan: Plan, resource: Kind, key: str, payload: dict[str, Any], kept_id: str,
                     duplicates: list[dict[str, Any]], prune: bool) -> None:
    """Copies of one of our objects: deleted with --prune if they hold exactly what the file renders."""
    identical = []
    for item in duplicates:
        remote_id = resource.remote_id(item)
        if differences(resource, item, payload):
            plan.notes.append(f"{resource.name} {remote_id} also carries the key {key!r} but differs from {kept_id}, "
                              "the one ccl manages: ccl leaves it alone; delete it by hand if it is a leftover")
        else:
            identical.append(remote_id)
    if prune:
        plan.changes.extend(Change(resource.name, key, "delete", resource.title(payload), remote_id,
                                   reason=f"duplicate of {kept_id}") for remote_id in identical)
    elif identical:
        copies = "an identical copy" if len(identical) == 1 else f"{len(identical)} identical copies"
        plan.notes.append(f"{copies} of {resource.name} {key} ({', '.join(identical)}), most likely made by two "
                          f"deploys at once: --prune deletes {'it' if len(identical) == 1 else 'them'} and keeps "
                          f"the oldest, {kept_id}")


def _note_integration_pipeline(plan: Plan, remote: list[dict[str, Any]]) -> None:
    for item in remote:
        if is_integration_pipeline_for_our_source(item):
            plan.notes.append(
                f"Datadog's integration pipeline {item.get('name')!r} (read-only, id {item.get('id')}) also processes "
                "source:claude-compliance-logs. Keep ours after it in Logs > Pipelines (ccl appends ours when it "
                "creates it): ours then only adds evt.outcome, usr.identity, usr.kind and the log status, which "
                "the rules need; before it, Datadog's would append the OCSF arrays a second time. Or disable "
                "Datadog's: ours produces all it does. ccl never touches it.")


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
            plan.changes.append(Change("rule", rule_id, "disable", str(item.get("name")), rule_id,
                                       ["isEnabled: true -> false"], {"isEnabled": False}, disables_default=True,
                                       reason=f"Datadog default rule, superseded by ours: {ours}"))
        else:
            state = "enabled" if enabled else "already disabled"
            plan.notes.append(f"Datadog default rule {rule_id} {item.get('name')!r} ({state}) has the strategy of "
                              f"ours: {ours}" + (" -- --disable-overlapping-defaults disables it (default rules "
                                                 "cannot be deleted)" if enabled else ""))


def render_plan(plan: Plan, verbose: bool = False) -> str:
    symbols = {"create": "+", "update": "~", "delete": "-", "noop": "=", "disable": "x"}
    disables = f", {plan.count('disable')} Datadog default rule{'s' if plan.count('disable') != 1 else ''} to " \
               "disable" if plan.count("disable") else ""
    lines = [f"Plan against {plan.base_url}: {plan.count('create')} to create, {plan.count('update')} to update, "
             f"{plan.count('delete')} to delete{disables}, {plan.count('noop')} unchanged"]
    for change in plan.changes:
        if change.action == "noop" and not verbose:
            continue
        where = f" (id {change.remote_id})" if change.remote_id else ""
        if change.reason:
            where += f": {change.reason}"
        lines.append(f"  {symbols[change.action]} {change.action:<7} {change.kind:<10} {change.key + where:<40} "
                     f"{change.title}")
        lines.extend(f"        {line}" for line in change.diff[:20])
        if len(change.diff) > 20:
            lines.append(f"        ... and {len(change.diff) - 20} more differences")
    if plan.notes:
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in plan.notes)
    return "\n".join(lines)
