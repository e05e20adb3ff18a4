"""What a YAML asset parsed to, kept per user so that the next `ccl` does not parse the same text again.

ruamel parses in pure Python (so that bounded_yaml's limits apply): the repository's 76 files take
about two seconds, every time `ccl` starts. An entry holds what `assets.load` made of one file's
text (its plain data), under the SHA-256 of that text, in a directory named after everything that
decides that result: the ruamel version and the source of the modules that parse and convert. A
changed file, another ccl or another ruamel therefore never meets an old entry. Only texts that
loaded without a problem are kept, so every problem is found by parsing, each time.

Entries are a cache: one that cannot be read or written is ignored (the text is parsed), never an
error. They live beside the GeoIP test database, in $XDG_CACHE_HOME (or ~/.cache)/claude-compliance-logs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

# A directory holds one ccl's entries; past this many (a file edited that often) it starts again.
MAX_ENTRIES = 5000
# Directories of other ccl or ruamel versions unused this long are removed when a new one is made.
STALE_SECONDS = 7 * 86400


def cache_root() -> Path:
    """Raises RuntimeError when there is no home directory to put it in."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "claude-compliance-logs" / "assets"


@cache
def _fingerprint() -> str:
    """What decides the data a text loads to: ruamel's version and the source of the loading modules."""
    import ruamel.yaml

    digest = hashlib.sha256(f"{ruamel.yaml.__version__} {sys.version_info[:2]}".encode())
    here = Path(__file__).parent
    for name in ("assets.py", "bounded_yaml.py", "asset_cache.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:24]


def _entry(text: str) -> Path:
    return cache_root() / _fingerprint() / f"{hashlib.sha256(text.encode('utf-8')).hexdigest()}.json"


def cached_data(text: str) -> Any | None:
    """The plain data `text` loaded to before, or None when it is not cached (or unreadable)."""
    try:
        stored = json.loads(_entry(text).read_bytes())
    except (OSError, ValueError, RuntimeError):
        return None
    if not isinstance(stored, dict) or not isinstance(stored.get("data"), dict):
        return None
    return stored["data"]


def keep(text: str, data: dict[str, Any]) -> None:
    """Remember what `text` loaded to; silently skipped when the cache cannot be written."""
    try:
        entry = _entry(text)
        directory = entry.parent
        if not directory.is_dir():
            directory.mkdir(parents=True, mode=0o700)
            _remove_stale_siblings(directory)
        elif len(os.listdir(directory)) > MAX_ENTRIES:
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True, mode=0o700)
        partial = directory / f".{entry.name}.{os.getpid()}"
        partial.write_text(json.dumps({"data": data}), encoding="utf-8")
        partial.replace(entry)
    except (OSError, ValueError, TypeError, RuntimeError):
        return


def _remove_stale_siblings(directory: Path) -> None:
    cutoff = time.time() - STALE_SECONDS
    for sibling in directory.parent.iterdir():
        if sibling != directory and sibling.is_dir() and sibling.stat().st_mtime < cutoff:
            shutil.rmtree(sibling, ignore_errors=True)
