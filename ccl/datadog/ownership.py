"""Which Datadog objects ccl owns: exact keys in fixed places, never a substring anywhere.

Rules and monitors carry the tag `ccl:<id>` of their file and the tag `managed-by:ccl`;
pipelines and dashboards end their description with the line `[managed by ccl: <id>]`.

- An object is ours when it carries the exact key of exactly one file of its kind in this
  repository (the tag `ccl:<id>`, or the marker as the description's last line).
- An object whose key names no file here is ours (a leftover that `--prune` deletes) only if it
  also carries the fixed marker: `managed-by:ccl` for tags, the anchored line for descriptions.
- Anything else that resembles ours (a `ccl:` tag of someone else's convention, a description that
  mentions the marker mid-text, an object carrying the keys of two files) is reported and never
  touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ccl.content.assets import Asset, Problem
from ccl.datadog.render import MANAGED_TAG, OWNERSHIP_TAG_PREFIX

ID = r"[a-z0-9][a-z0-9-]*"
MARKER_ANYWHERE = re.compile(r"\[managed by ccl:")
MARKER_LAST_LINE = re.compile(rf"(?:\A|\n)\[managed by ccl: ({ID})\]\Z")
TAG_KEY = re.compile(rf"\A{re.escape(OWNERSHIP_TAG_PREFIX)}({ID})\Z")


@dataclass(frozen=True)
class Claim:
    """What an object says about its owner: the keys in the fixed place, and the fixed marker."""

    keys: frozenset[str] = frozenset()
    marked: bool = False
    resembles: str = ""  # why it looks like ours, for the report when it is not


def tag_claim(tags: Any) -> Claim:
    tags = [tag for tag in tags or [] if isinstance(tag, str)]
    keys = frozenset(match.group(1) for tag in tags if (match := TAG_KEY.match(tag)))
    others = [tag for tag in tags if tag.startswith(OWNERSHIP_TAG_PREFIX) and not TAG_KEY.match(tag)]
    return Claim(keys, MANAGED_TAG in tags, f"tag {others[0]} is not a ccl key" if others else "")


def description_claim(description: Any) -> Claim:
    text = description.rstrip() if isinstance(description, str) else ""
    match = MARKER_LAST_LINE.search(text)
    if match:
        return Claim(frozenset({match.group(1)}), True, "its description's last line")
    return Claim(resembles="its description mentions [managed by ccl: ...], not as its last line"
                 if MARKER_ANYWHERE.search(text) else "")


@dataclass
class Ownership:
    """Remote objects of one kind sorted out: ours by key (oldest first), and what to report."""

    owned: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lookalikes: list[str] = field(default_factory=list)  # "id (why)"


def sort_out(remote: list[dict[str, Any]], claim_of: Callable[[dict[str, Any]], Claim | None],
             remote_id: Callable[[dict[str, Any]], str], created: Callable[[dict[str, Any]], Any],
             local_keys: set[str]) -> Ownership:
    """Which remote objects are ours, by key; `claim_of` answers None for objects never ours."""
    ownership = Ownership()
    ages = {id(item): (age_seconds(created(item)), position) for position, item in enumerate(remote)}
    for item in sorted(remote, key=lambda item: ages[id(item)]):
        claim = claim_of(item)
        if claim is None or not (claim.keys or claim.resembles):
            continue
        here = claim.keys & local_keys
        if len(here) == 1:
            ownership.owned.setdefault(next(iter(here)), []).append(item)
        elif len(here) > 1:
            ownership.lookalikes.append(f"{remote_id(item)} (carries the keys of {', '.join(sorted(here))}: ccl "
                                        "cannot tell which file it belongs to)")
        elif len(claim.keys) == 1 and claim.marked:
            ownership.owned.setdefault(next(iter(claim.keys)), []).append(item)
        elif claim.keys:
            tags = ", ".join(OWNERSHIP_TAG_PREFIX + key for key in sorted(claim.keys))
            why = "several keys" if claim.marked else f"no file here has this id, and {MANAGED_TAG} is missing"
            ownership.lookalikes.append(f"{remote_id(item)} ({tags}: {why})")
        else:
            ownership.lookalikes.append(f"{remote_id(item)} ({claim.resembles})")
    return ownership


def age_seconds(value: Any) -> float:
    """Creation time as epoch seconds (Datadog gives ISO 8601 text or epoch milliseconds); unknown last."""
    if isinstance(value, bool):
        return float("inf")
    if isinstance(value, int | float):
        return float(value) / 1000.0
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return float("inf")


RESERVED_TAG_KEYS = ("ccl", "managed-by")


def reserved_tag_problems(asset: Asset) -> list[Problem]:
    """User tags that would forge ownership: `ccl:*` and `managed-by:*` are ccl's own."""
    problems = []
    for position, tag in enumerate(asset.data.get("tags") or []):
        if isinstance(tag, str) and tag.split(":", 1)[0].strip().lower() in RESERVED_TAG_KEYS:
            problems.append(Problem(asset.path, asset.line("tags", position),
                                    f"tags.{position}: {tag!r}: tags `ccl:...` and `managed-by:...` are how ccl "
                                    "recognizes what it owns, and it adds them itself; remove this one"))
    description = asset.data.get("description")
    if asset.kind in ("pipeline", "dashboard") and isinstance(description, str) \
            and MARKER_ANYWHERE.search(description):
        problems.append(Problem(asset.path, asset.line("description"), "description: `[managed by ccl: ...]` is "
                                "the marker ccl adds itself; remove it from the text"))
    return problems
