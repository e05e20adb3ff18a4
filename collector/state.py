"""The state directory: the cursor and the recently emitted ids, saved so that nothing is lost.

Every write is atomic (temp file, fsync, rename, fsync of the directory), so a `kill -9` leaves
either the old state or the new one, never half of each. A lock keeps a second collector out.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.errors import StateError

STATE_VERSION = 1
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

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "cursor": self.cursor,
            "cursor_created_at": self.cursor_created_at,
            "initial": self.initial,
            "last_reconcile_at": self.last_reconcile_at,
            "filters": self.filters,
            "recent": self.recent,
        }

    @classmethod
    def from_json(cls, data: Any, path: Path) -> FeedState:
        def bad(why: str) -> StateError:
            return StateError(f"{path}: {why}; {RECOVERY_ADVICE}")

        if not isinstance(data, dict):
            raise bad("not a JSON object")
        if data.get("version") != STATE_VERSION:
            raise bad(f"unknown state version {data.get('version')!r} (this collector reads {STATE_VERSION})")
        recent = data.get("recent", {})
        if not isinstance(recent, dict) or not all(isinstance(v, int | float) for v in recent.values()):
            raise bad("`recent` must map activity ids to epoch seconds")
        for key in ("cursor", "cursor_created_at"):
            if data.get(key) is not None and not isinstance(data.get(key), str):
                raise bad(f"`{key}` must be a string or null")
        initial = data.get("initial")
        if initial is not None and not (isinstance(initial, dict) and isinstance(initial.get("since"), str)):
            raise bad("`initial` must be null or an object with `since`")
        last = data.get("last_reconcile_at")
        if last is not None and not isinstance(last, int | float):
            raise bad("`last_reconcile_at` must be a number or null")
        filters = data.get("filters", {})
        if not isinstance(filters, dict):
            raise bad("`filters` must be an object")
        return cls(data.get("cursor"), data.get("cursor_created_at"), initial, dict(recent), last, filters)


RECOVERY_ADVICE = (
    "it holds the collector's position in the feed, so it is not replaced silently: restore it from a "
    "backup, or move it aside to start again from --since (activities after that point are read again)"
)


class StateDir:
    def __init__(self, path: Path):
        self.path = path
        self._lock_fd: int | None = None

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
        lock_path = self.path / name
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise StateError(f"cannot lock {lock_path}: {exc.strerror}") from None
                if time.monotonic() >= deadline:
                    holder = _read_small(lock_path).strip() or "unknown"
                    os.close(fd)
                    raise StateError(
                        f"state directory {self.path} is in use by another collector (pid {holder}); "
                        "two collectors must not share one state: stop the other one or use another --state-dir"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def load_feed(self) -> FeedState | None:
        data = self.read_json(self.state_file)
        return None if data is None else FeedState.from_json(data, self.state_file)

    def save_feed(self, state: FeedState) -> None:
        self.write_json(self.state_file, state.to_json())

    def read_json(self, path: Path) -> Any | None:
        """The JSON in `path`, None when it does not exist; a clear StateError when it is unusable."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            if path.is_symlink():
                raise StateError(f"{path} is a symlink to a missing file; {RECOVERY_ADVICE}") from None
            return None
        except OSError as exc:
            raise StateError(f"cannot read {path}: {exc.strerror}") from None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise StateError(f"{path} is corrupt ({exc}); {RECOVERY_ADVICE}") from None
        if data is None:
            raise StateError(f"{path} holds null; {RECOVERY_ADVICE}")
        return data

    def write_json(self, path: Path, data: Any) -> None:
        atomic_write(path, json.dumps(data, separators=(",", ":"), sort_keys=True).encode())


def atomic_write(path: Path, payload: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise StateError(f"cannot write {path}: {exc.strerror}") from None


def _read_small(path: Path) -> str:
    try:
        return path.read_text()[:32]
    except OSError:
        return ""
