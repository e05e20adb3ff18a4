"""`ccl init DIR`: scaffold a detections repository and say what to do next."""

from __future__ import annotations

import sys
from pathlib import Path

from ccl.scaffold import DEFAULT_INSTALL, ScaffoldError, scaffold


def run_init(directory: Path, install: str | None, force: bool) -> int:
    try:
        result = scaffold(directory, install or DEFAULT_INSTALL, force)
    except ScaffoldError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write in {directory}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"{directory}: wrote {len(result.written)} file{'s' if len(result.written) != 1 else ''}")
    for relative in result.written:
        print(f"  {relative}")
    if result.kept:
        print(f"kept as they were ({len(result.kept)}): {', '.join(result.kept)}")
    print("\nnext:")
    print(f"  cd {directory} && ccl validate && ccl test")
    if not (directory / ".git").exists():
        print("  git init -b main && git add -A && git commit -m 'Detections as code'   # then push to GitHub")
    print("  on GitHub: secrets DD_API_KEY and DD_APP_KEY, and the variable DD_SITE if not datadoghq.com")
    if install is None:
        print(f"  requirements.txt installs {DEFAULT_INSTALL}, which is not on PyPI yet: point it at a git\n"
              "  URL or a wheel your team hosts (the comment in it shows how; --install SPEC writes that line)")
    return 0
