"""`ccl validate`: every problem of every asset in one run, `path:line: what, and the fix`."""

from __future__ import annotations

import sys
from pathlib import Path

from ccl.assets import Asset, load_all
from ccl.validate import count_by_kind, validate


def load_valid(paths: tuple[Path, ...]) -> tuple[list[Asset], int]:
    """Assets if they all validate; else print the problems and return the exit code 2."""
    assets, problems = load_all(paths, Path("."))
    problems += validate(assets)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s); nothing was changed", file=sys.stderr)
        return assets, 2
    if not assets:
        print("no assets found: run from the repository root, or name files or directories", file=sys.stderr)
        return assets, 2
    return assets, 0


def run_validate(paths: tuple[Path, ...]) -> int:
    assets, code = load_valid(paths)
    if code == 0:
        counts = count_by_kind(assets)
        summary = ", ".join(f"{counts[kind]} {kind}{'s' if counts[kind] != 1 else ''}"
                            for kind in ("pipeline", "dashboard", "monitor", "rule") if kind in counts)
        print(f"ok: {summary}")
    return code
