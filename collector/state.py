"""The state directory: the cursor and the recently emitted ids, saved so that nothing is lost.

Every write is atomic (temp file, fsync, rename, fsync of the directory), so a `kill -9` leaves
either the old state or the new one, never half of each. A lock keeps a second collector out.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector import __version__
from collector.errors import StateError
from collector.files import NotARegularFile, StagedWrite, atomic_write, read_regular, stage_write
from collector.lock import StateLock

# The format of the files in the state dir (state.json and backfill.json carry it as "version").
# 0.1.0 wrote 1 (a file without "version" is read as 1). A collector reads every format up to its
# own, upgrading older ones as it loads them, and refuses a newer one (see `check_format`).
STATE_VERSION = 1
WRITTEN_BY = f"claude-compliance-logs {__version__}"
STATE_FILE = "state.json"
STATUS_FILE = "status.json"
LOCK_FILE = "collector.lock"


@dataclass
class FeedState:
    """Where the feed stands. Cursors are opaque strings from the API, stored as they came."""

    cursor: str | None = None
    cursor_created_at: str | None = None
    initial: dict[str, Any] | None = None
    recent: dict[str, float] = field(default_factory=dict)
    last_reconcile_at: float | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)
    # Where the last completed re-poll ended, and the spans of time a later one must still read
    # (epoch seconds on the API's clock): see collector/repoll.py.
    reconciled_until: float | None = None
    repoll_spans: list[tuple[float, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "written_by": WRITTEN_BY,
            "cursor": self.cursor,
            "cursor_created_at": self.cursor_created_at,
            "initial": self.initial,
            "last_reconcile_at": self.last_reconcile_at,
            "reconciled_until": self.reconciled_until,
            "repoll_spans": [list(span) for span in self.repoll_spans],
            "filters": self.filters,
            "recent": self.recent,
        }

    @classmethod
    def from_json(cls, data: Any, path: Path) -> FeedState:
        def bad(why: str) -> StateError:
            return StateError(f"{path}: {why}; {RECOVERY_ADVICE}")

        if not isinstance(data, dict):
            raise bad("not a JSON object")
        check_format(data, path)
        recent = data.get("recent", {})
        if not isinstance(recent, dict) or not all(isinstance(v, int | float) for v in recent.values()):
            raise bad("`recent` must map activity ids to epoch seconds")
        for key in ("cursor", "cursor_created_at"):
            if data.get(key) is not None and not isinstance(data.get(key), str):
                raise bad(f"`{key}` must be a string or null")
        initial = data.get("initial")
        if initial is not None and not (isinstance(initial, dict) and isinstance(initial.get("since"), str)):
            raise bad("`initial` must be null or an object with `since`")
        for key in ("last_reconcile_at", "reconciled_until"):
            if data.get(key) is not None and not _is_finite(data.get(key)):
                raise bad(f"`{key}` must be a number or null")
        spans = data.get("repoll_spans", [])
        if not isinstance(spans, list) or not all(
            isinstance(span, list) and len(span) == 2 and all(_is_finite(edge) for edge in span) for span in spans
        ):
            raise bad("`repoll_spans` must be a list of [from, to] epoch seconds")
        filters = data.get("filters", {})
        if not isinstance(filters, dict):
            raise bad("`filters` must be an object")
        return cls(data.get("cursor"), data.get("cursor_created_at"), initial, dict(recent),
                   data.get("last_reconcile_at"), filters, data.get("reconciled_until"),
                   [(float(lo), float(hi)) for lo, hi in spans])


def check_format(data: dict[str, Any], path: Path) -> None:
    """Refuse a file of a state format this collector does not know, in one line that says what to do.

    A newer format is left exactly as it is: the collector that wrote it can go on from it.
    """
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise StateError(f"{path}: `version` must be a whole number of 1 or more, not {version!r}; {RECOVERY_ADVICE}")
    if version > STATE_VERSION:
        writer = data.get("written_by") if isinstance(data.get("written_by"), str) else "a newer collector"
        raise StateError(
            f"{path} has state format {version}, written by {writer[:80]}; this collector "
            f"(claude-compliance-logs {__version__}) reads formats up to {STATE_VERSION}. Run that version or a newer "
            "one (upgrade the .pyz or the package on this host); the state was left as it is"
        )


def _is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


RECOVERY_ADVICE = (
    "it holds the collector's position in the feed, so it is not replaced silently: restore it from a "
    "backup, or move it aside to start again from --since (activities after that point are read again)"
)


# state.json of a busy org holds tens of thousands of recent ids; nothing legitimate comes near this.
MAX_STATE_BYTES = 512 << 20


class StateDir:
    def __init__(self, path: Path):
        self.path = path
        self._lock: StateLock | None = None

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def status_file(self) -> Path:
        return self.path / STATUS_FILE

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create state directory {self.path}: {exc.strerror}") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise StateError(f"state directory {self.path} is not writable by this user")

    def lock(self, name: str = LOCK_FILE, wait_seconds: float = 10.0) -> None:
        """Exclusive use of this state directory; waits briefly (a restarting Vector overlaps)."""
        lock = StateLock(self.path / name)
        lock.acquire(wait_seconds)
        self._lock = lock

    def verify_lock(self) -> bool:
        """True when the lock file had vanished and was taken back; StateError when another collector has it."""
        return self._lock.verify() if self._lock is not None else False

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def load_feed(self) -> FeedState | None:
        data = self.read_json(self.state_file)
        return None if data is None else FeedState.from_json(data, self.state_file)

    def save_feed(self, state: FeedState) -> None:
        self.stage_feed(state).commit()

    def stage_feed(self, state: FeedState) -> StagedWrite:
        """The new state on disk but not yet in effect: commit it once the page it follows is written."""
        return stage_write(self.state_file, _encode(state.to_json()))

    def read_json(self, path: Path, advice: str = "") -> Any | None:
        """The JSON in `path`, None when it does not exist; a clear StateError when it is unusable.

        `advice` ends the error message; by default, what to do about a corrupt state.json.
        """
        advice = advice or RECOVERY_ADVICE
        try:
            raw, _ = read_regular(path, MAX_STATE_BYTES)
        except FileNotFoundError:
            if path.is_symlink():
                raise StateError(f"{path} is a symlink to a missing file; {advice}") from None
            return None
        except NotARegularFile as exc:
            raise StateError(f"{exc.strerror}; {advice}") from None
        except OSError as exc:
            raise StateError(f"cannot read {path}: {exc.strerror}") from None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise StateError(f"{path} is corrupt ({str(exc)[:200]}); {advice}") from None
        if data is None:
            raise StateError(f"{path} holds null; {advice}")
        return data

    def write_json(self, path: Path, data: Any) -> None:
        atomic_write(path, _encode(data))


def _encode(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
