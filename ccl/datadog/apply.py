"""Apply a plan: creates and updates first, then deletes, each checked by reading Datadog back.

- Before each create the key is looked up again: a deploy that ran at the same time (or a change
  made since the plan was shown) may have created it, and Datadog has no create-if-absent. What
  is found is updated instead (or left as it is when it already matches).
- After each write the object is read back and compared with what was sent, with the plan's diff:
  a Datadog (or a proxy) that answers 200 without applying a change is reported as a failure.
  Reads are retried for a few seconds, as Datadog's Terraform provider does after a create
  (resource_datadog_dashboard.go retries GET until the new dashboard is there).
- The run stops, with the rest listed as not attempted, when retrying will not help: a 401/403,
  Datadog still failing after the client's retries (5xx, 429, unreachable), or several writes in a
  row acknowledged but not applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ccl.datadog.client import RETRYABLE, DatadogClient, DatadogError
from ccl.datadog.deploy import Change, Plan, diff, differences, newest_created
from ccl.datadog.resources import KINDS, Kind, Rules

READ_BACK_WAITS = (1.0, 2.0)  # seconds between reads while Datadog does not show the write yet
UNAPPLIED_IN_A_ROW = 3


class NotApplied(Exception):
    """Datadog acknowledged a write that reading back does not show."""


@dataclass
class Outcome:
    applied: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)
    refused: bool = False  # a 401 or 403 stopped the run
    stopped: str = ""  # why the run stopped before the end, if it did


def apply(plan: Plan, client: DatadogClient) -> Outcome:
    outcome = Outcome()
    pending = [c for c in plan.changes if c.action in ("create", "update", "disable")] + \
              [c for c in plan.changes if c.action == "delete"]
    unapplied = 0
    looks = {kind: Look(since) for kind, since in plan.newest.items()}
    for index, change in enumerate(pending):
        label = f"{change.action} {change.kind} {change.key}"
        resource = KINDS[change.kind](client)
        try:
            done = _apply_one(change, resource, plan.local_keys.get(change.kind, set()),
                              looks.setdefault(change.kind, Look(None)))
        except NotApplied as error:
            outcome.failed.append(f"{label}: {error}")
            unapplied += 1
            if unapplied >= UNAPPLIED_IN_A_ROW:
                outcome.stopped = (f"Datadog acknowledged {unapplied} writes in a row without applying them; "
                                   "stopped. Is DD_API_URL or DD_SITE pointing at Datadog itself?")
                outcome.not_attempted = [f"{c.action} {c.kind} {c.key}" for c in pending[index + 1:]]
                break
            continue
        except DatadogError as error:
            if isinstance(resource, Rules) and error.status == 400 and change.source is not None:
                outcome.failed.append(f"{label}: {change.source}: Datadog refused the rule: {error}")
                continue
            outcome.failed.append(f"{label}: {error}")
            if error.status in (401, 403) or error.status in RETRYABLE or error.status == 0:
                outcome.refused = error.status in (401, 403)
                if not outcome.refused:
                    outcome.stopped = "Datadog keeps failing; stopped. Run the same command again later."
                outcome.not_attempted = [f"{c.action} {c.kind} {c.key}" for c in pending[index + 1:]]
                break
            continue
        unapplied = 0
        outcome.applied.append(label + done)
    return outcome


def _apply_one(change: Change, resource: Kind, local_keys: set[str], look: Look) -> str:
    """Make one change and check it; returns what to add to its line in the report."""
    remote_id = str(change.remote_id)
    if change.disables_default and isinstance(resource, Rules):
        resource.disable(remote_id)
        _read_back(resource, remote_id, {"isEnabled": False})
        return f" (id {remote_id})"
    if change.action == "delete":
        return _delete(resource, remote_id)
    payload = change.payload
    assert payload is not None
    if isinstance(resource, Rules):
        resource.validate(payload)  # a 400 here leaves the rule as it is in Datadog
    if change.action == "update":
        resource.update(remote_id, payload)
        _read_back(resource, remote_id, payload)
        return f" (id {remote_id})"
    found = look.again(resource, change.key, local_keys)
    if found is not None:
        remote_id = resource.remote_id(found)
        if not differences(resource, found, payload):
            return f" (id {remote_id}): another run created it meanwhile, and it already matches"
        resource.update(remote_id, payload)
        _read_back(resource, remote_id, payload)
        return f" (id {remote_id}): another run created it meanwhile; updated it instead"
    remote_id = resource.create(payload)
    _read_back(resource, remote_id, payload)
    return f" (id {remote_id})"


@dataclass
class Look:
    """Looking a key up again before each create, for one kind of object.

    Each look lists what was created since the previous one (`since`, Datadog's own creation
    time, so no clock of ours is compared with Datadog's) and remembers it, so that an object a
    concurrent deploy made is found whichever look first saw it.
    """

    since: Any
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    def again(self, resource: Kind, key: str, local_keys: set[str]) -> dict[str, Any] | None:
        """The oldest object that now carries `key`, if any."""
        remote = resource.recent(self.since)
        self.since = newest_created(resource, remote, self.since)
        self.seen.update((resource.remote_id(item), item) for item in remote)
        for item in resource.ownership(list(self.seen.values()), local_keys | {key}).owned.get(key, []):
            try:
                return resource.get(resource.remote_id(item))  # still there (a prune may have removed it)
            except DatadogError as error:
                if error.status != 404:
                    raise
        return None


def _read_back(resource: Kind, remote_id: str, payload: dict[str, Any]) -> None:
    """Raise NotApplied unless Datadog shows `payload` on the object, within a few seconds."""
    for wait in (*READ_BACK_WAITS, None):
        try:
            found = diff(payload, resource.comparable_remote(resource.get(remote_id), payload))
        except DatadogError as error:
            if error.status != 404:
                raise
            found = ["(the object is not there)"]
        if not found:
            return
        if wait is None:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise NotApplied(f"Datadog answered success, but reading {resource.name} {remote_id} back does not show "
                             f"the change: {found[0]}{more}")
        resource.client.sleep(wait)


def _delete(resource: Kind, remote_id: str) -> str:
    try:
        resource.delete(remote_id)
    except DatadogError as error:
        if error.status == 404:
            return f" (id {remote_id}): already gone"
        raise
    for wait in (*READ_BACK_WAITS, None):
        try:
            resource.get(remote_id)
        except DatadogError as error:
            if error.status == 404:
                return f" (id {remote_id})"
            raise
        if wait is None:
            raise NotApplied(f"Datadog answered success, but {resource.name} {remote_id} is still there")
        resource.client.sleep(wait)
    return f" (id {remote_id})"


def render_outcome(outcome: Outcome) -> str:
    lines = []
    for title, items in (("applied", outcome.applied), ("FAILED", outcome.failed),
                         ("not attempted", outcome.not_attempted)):
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines.extend(f"  {item}" for item in items)
    if outcome.stopped:
        lines.append(outcome.stopped)
    if outcome.failed or outcome.not_attempted:
        lines.append("Fix the cause and run the same command again: it completes what is missing.")
    elif not outcome.applied:
        lines.append("nothing to do")
    return "\n".join(lines)
