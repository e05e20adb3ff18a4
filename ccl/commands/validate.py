"""`ccl validate`: every problem of every asset in one run, `path:line: what, and the fix`."""

from __future__ import annotations

import sys
from pathlib import Path

from ccl.content.assets import Asset, load_all
from ccl.detection.actor_matrix import group_by_gaps
from ccl.detection.rules import build_rule
from ccl.validate import count_by_kind, validate


def actor_warnings(assets: list[Asset]) -> list[str]:
    """Rules that would never see some actor the catalog allows for their types (the actor matrix)."""
    warnings = []
    for asset in assets:
        if asset.kind != "rule":
            continue
        rule = build_rule(asset)
        for index, attribute, missing in group_by_gaps(rule):
            query = asset.data["queries"][index]
            key = "group_by" if attribute in query.get("group_by", []) else "metric"
            kinds = sorted({kind for _, kind in missing})
            types = sorted({activity_type for activity_type, _ in missing})
            warnings.append(f"{asset.path}:{asset.line('queries', index, key)}: warning: queries.{index}.{key}: "
                            f"{attribute} is missing when {', '.join(kinds)} acts ({', '.join(types[:3])}"
                            f"{' and more' if len(types) > 3 else ''}), so the rule never sees them; use "
                            "@usr.identity, which every actor has, or list the kind under excludes_actors with a "
                            "reason")
    return warnings


def load_valid(paths: tuple[Path, ...], so: str = "") -> tuple[list[Asset], int]:
    """Assets if they all validate; else print the problems and return the exit code 2.

    `so`: what the command therefore did not do ("nothing was sent to Datadog"), for the last line.
    """
    assets, problems = load_all(paths, Path("."))
    problems += validate(assets)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        print(f"{count}; {so}" if so else count, file=sys.stderr)
        return assets, 2
    if not assets:
        print("no assets found: run from the repository root, or name files or directories", file=sys.stderr)
        return assets, 2
    return assets, 0


def run_validate(paths: tuple[Path, ...]) -> int:
    assets, code = load_valid(paths)
    if code == 0:
        for warning in actor_warnings(assets):
            print(warning, file=sys.stderr)
        counts = count_by_kind(assets)
        summary = ", ".join(f"{counts[kind]} {kind}{'s' if counts[kind] != 1 else ''}"
                            for kind in ("pipeline", "dashboard", "monitor", "rule") if kind in counts)
        print(f"ok: {summary}")
    return code
