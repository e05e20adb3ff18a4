"""`ccl render`: the Datadog API payloads, one JSON file per asset."""

from __future__ import annotations

from pathlib import Path

from ccl.commands.validate import load_valid
from ccl.render import write_all


def run_render(paths: tuple[Path, ...], out: Path) -> int:
    assets, code = load_valid(paths)
    if code:
        return code
    written = write_all(assets, out)
    print(f"wrote {len(written)} payloads under {out}/ (pipelines, dashboards, rules, monitors)")
    return 0
