"""`ccl render`: the Datadog API payloads, one JSON file per asset."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

from ccl.commands.validate import load_valid
from ccl.datadog.render import write_all

# The disk failed us, not the user: a failure while running (exit 1), not a bad --out (exit 2).
RUNNING_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


def run_render(paths: tuple[Path, ...], out: Path) -> int:
    assets, code = load_valid(paths, so="nothing was written")
    if code:
        return code
    try:
        written = write_all(assets, out)
    except OSError as error:
        where = error.filename or out
        print(f"error: cannot write the payloads under {out}/: {where}: {error.strerror or error}; "
              "choose another --out directory", file=sys.stderr)
        return 1 if error.errno in RUNNING_FAILURES else 2
    print(f"wrote {len(written)} payloads under {out}/ (pipelines, dashboards, rules, monitors)")
    return 0
